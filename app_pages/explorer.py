"""Embedding explorer: three linked 2-D maps (original features and two trained models)."""

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from crossmodal_core import appdata
from crossmodal_core.appdata import urlstate
from app_pages import _shared

st.title("Embedding explorer")
app = _shared.current_dataset()
if app is None:
    st.stop()
label = _shared.current_label(app)
pair = _shared.current_pair(app)
trained = [_shared.loaded(m) for m in _shared.trained_models(app, label, pair)]
by_id = {m.id: m for m in trained}
options = [appdata.ORIGINAL] + list(by_id)


def option_name(option: str) -> str:
    return appdata.ORIGINAL_TITLE if option == appdata.ORIGINAL else by_id[option].title


if len(trained) < 2:
    st.info("Train C-CCA and TNN-C-CCA to fill the other panels (the button trains what is missing).")
    _shared.train_button(app, label, pair, key="explorer_train")

url = _shared.url_state("explorer")
url_model = lambda o: o if o == appdata.ORIGINAL else by_id[o].name  # noqa: E731 - a panel's URL value
top = st.columns([2, 3, 2])
method = top[0].radio("Map", ["umap", "pca"], format_func=str.upper, horizontal=True, key="explorer_method",
                      index=["umap", "pca"].index(url.choice(urlstate.MAP_KEY, ["umap", "pca"], "umap", what="map")),
                      help="UMAP is computed once per dataset and model (a button below), then stored; "
                           "PCA is instant.")
preferred = ["ccca", "tnn-ccca", "cca", "cdcca", "dcca", "ugaar"]
defaults = [appdata.ORIGINAL] + [m.id for name in preferred for m in trained if m.name == name]
defaults += [o for o in options if o not in defaults]
panel_choice = []
choice_cols = st.columns(3)
for i in range(3):
    default = defaults[i] if i < len(defaults) else appdata.ORIGINAL
    default = url.choice(urlstate.PANEL_KEYS[i], options, default, what=f"model of panel {i + 1}",
                         encode=url_model, describe=option_name)
    panel_choice.append(choice_cols[i].selectbox(f"Panel {i + 1}", options, index=options.index(default),
                                                 format_func=option_name, key=f"explorer_model_{i}"))

panels = []
for choice in panel_choice:
    model = None if choice == appdata.ORIGINAL else by_id[choice]
    panels.append((model, appdata.panel_projection(app, model, pair, method, label)))

missing = [i for i, (_, p) in enumerate(panels) if p is None]
if missing:
    top[1].warning("UMAP not computed yet for panel(s) " + ", ".join(str(i + 1) for i in missing)
                   + ": showing PCA meanwhile.")
    if top[2].button("Compute UMAP (stored on disk)", type="primary"):
        bar = _shared.StreamlitProgress("starting UMAP")
        for n, i in enumerate(missing):
            model = panels[i][0]

            def step(f, msg, n=n):
                bar((n + f) / len(missing), f"panel {missing[n] + 1}: {msg}")

            appdata.compute_panel_projection(app, model, pair, "umap", label, progress=step)
        bar.done()
        st.rerun()
    panels = [(m, p if p is not None else appdata.panel_projection(app, m, pair, "pca", label)) for m, p in panels]

# colour by a label set with few classes: hundreds of colours (e.g. one per work) tell nothing
colour_sets = list(app.dataset.label_names)
few = [n for n in colour_sets if len(app.dataset.class_names[n]) <= 24]
preferred = label if label in few else (few[0] if few else (colour_sets[0] if colour_sets else None))
preferred = url.choice(urlstate.COLOUR_KEY, colour_sets, preferred, what="colouring")
color_label = top[0].selectbox("Colour by", colour_sets, index=colour_sets.index(preferred), key="explorer_colour",
                               help="The label set that colours the points (hover shows the item).") \
    if colour_sets else None
labels_all, class_names = appdata.labels_for(app.dataset, color_label or appdata.PAIR_LABEL)
if urlstate.SELECTION_KEY in url and _shared.SELECTION not in st.session_state:  # a link's selection
    st.session_state[_shared.SELECTION] = url.selection(urlstate.SELECTION_KEY, app.dataset.n_items, [])
selection = set(st.session_state.get(_shared.SELECTION) or [])
shared_selection = urlstate.encode_selection(selection)
if shared_selection is None:
    st.caption(f"The {len(selection):,} selected items are too many to put in the link to this view.")
_shared.share("explorer", {urlstate.MAP_KEY: method, urlstate.COLOUR_KEY: color_label,
                           **{key: url_model(o) for key, o in zip(urlstate.PANEL_KEYS, panel_choice)},
                           urlstate.SELECTION_KEY: shared_selection or None})
SYMBOLS = ["circle", "diamond", "x", "triangle-up"]
palette = qualitative.Dark24 + qualitative.Light24


@st.cache_data(max_entries=8, show_spinner=False)
def hover_texts(dataset_key: str, rows: tuple, label_name: str) -> list[str]:
    return appdata.item_text(app, list(rows), label_name)


def figure(panel: appdata.PanelData) -> go.Figure:
    """The panel's figure, built once per (points, colouring, selection) and kept in memory:
    building and validating ~20 plotly traces costs about 40 ms a panel, a fifth of a warm visit."""
    points = hashlib.sha1(panel.rows.tobytes())
    for xy in panel.coords:
        points.update(np.ascontiguousarray(xy).tobytes())
    return _figure(app.key, points.hexdigest(), panel.title, panel.method, panel.joint, tuple(pair),
                   color_label or label, tuple(sorted(selection)), _panel=panel)


@st.cache_resource(max_entries=24, show_spinner=False)
def _figure(dataset_key: str, points: str, title: str, method: str, joint: bool, pair: tuple, colour: str,
            selected_rows: tuple, _panel: appdata.PanelData) -> go.Figure:
    panel = _panel
    fig = go.Figure()
    rows = panel.rows
    lab = labels_all[rows]
    texts = np.array(hover_texts(app.key, tuple(rows.tolist()), color_label or label))
    classes = np.unique(lab)
    many = len(classes) > 24
    selected = np.isin(rows, list(selection)) if selection else np.zeros(len(rows), bool)
    opacity = 0.25 if selection else 0.8
    for m, (view, xy) in enumerate(zip(pair, panel.coords)):
        if many:
            fig.add_trace(go.Scatter(
                x=xy[:, 0], y=xy[:, 1], mode="markers", name=view, showlegend=False,
                marker=dict(symbol=SYMBOLS[m], size=6, color=lab, colorscale="Turbo", opacity=opacity),
                customdata=rows, text=texts, hovertemplate=f"<b>{view}</b> %{{text}}<extra></extra>"))
            continue
        for c in classes:
            keep = lab == c
            fig.add_trace(go.Scatter(
                x=xy[keep, 0], y=xy[keep, 1], mode="markers", name=f"{class_names[c]} · {view}",
                legendgroup=f"class-{c}", showlegend=False,
                marker=dict(symbol=SYMBOLS[m], size=6, color=palette[int(c) % len(palette)], opacity=opacity,
                            line=dict(width=0)),
                customdata=rows[keep], text=texts[keep], hovertemplate=f"<b>{view}</b> %{{text}}<extra></extra>"))
    if not many:  # legend: one entry per class (colour; click hides it) and one per modality (marker)
        for c in classes:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=class_names[c],
                                     legendgroup=f"class-{c}",
                                     marker=dict(symbol="square", size=9, color=palette[int(c) % len(palette)])))
    for m, view in enumerate(pair):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{view} (marker)",
                                 legendgroup=f"view-{view}",
                                 marker=dict(symbol=SYMBOLS[m], size=9, color="#555")))
    if selected.any():
        for m, (view, xy) in enumerate(zip(pair, panel.coords)):
            fig.add_trace(go.Scatter(
                x=xy[selected, 0], y=xy[selected, 1], mode="markers", name=f"selected · {view}",
                marker=dict(symbol=SYMBOLS[m], size=11 if selected.sum() <= 50 else 8, color="rgba(0,0,0,0)",
                            line=dict(width=2 if selected.sum() <= 50 else 1, color="black")),
                customdata=rows[selected], text=texts[selected],
                hovertemplate=f"<b>selected {view}</b> %{{text}}<extra></extra>"))
    kind = panel.method.upper() + ("" if panel.joint else " (each modality mapped separately)")
    fig.update_layout(
        title=dict(text=f"{panel.title}<br><sup>{kind}</sup>", x=0.5, xanchor="center"),
        height=520, margin=dict(l=10, r=10, t=70, b=10), dragmode="lasso",
        legend=dict(orientation="h", yanchor="top", y=-0.02, font=dict(size=10)),
        xaxis=dict(showticklabels=False, zeroline=False), yaxis=dict(showticklabels=False, zeroline=False),
        template="plotly_white")
    return fig


def on_select(key: str) -> None:
    state = st.session_state.get(key)
    points = (state or {}).get("selection", {}).get("points", [])
    rows = {int(p["customdata"][0] if isinstance(p.get("customdata"), list) else p["customdata"])
            for p in points if p.get("customdata") is not None}
    st.session_state[_shared.SELECTION] = sorted(rows)


figures = []
cols = st.columns(3)
for i, (col, (model, panel)) in enumerate(zip(cols, panels)):
    fig = figure(panel)
    figures.append(fig)
    with col:
        key = f"explorer_panel_{i}"
        st.plotly_chart(fig, key=key, on_select=lambda key=key: on_select(key),
                        selection_mode=("points", "lasso", "box"),
                        config={"displaylogo": False,
                                "toImageButtonOptions": {"format": "svg", "filename": f"crossmodal_{panel.title}",
                                                         "scale": 2}})
        if not panel.stored and method == "umap":
            st.caption("PCA shown until the UMAP is computed.")

info = st.columns([3, 1, 1])
if selection:
    info[0].markdown(f"**{len(selection)} item(s) selected** (highlighted in every panel). "
                     "Open **Retrieval** to query with them.")
    if info[1].button("Clear selection"):
        st.session_state[_shared.SELECTION] = []
        st.rerun()
else:
    info[0].caption("Click a point or draw a lasso/box in any panel to highlight the same items everywhere. "
                    "The camera icon saves a panel as SVG; the button on the right exports an HTML page "
                    "whose camera icon saves PNG.")


def standalone_html() -> str:
    parts = [figures[0].to_html(full_html=False, include_plotlyjs=True,
                                config={"toImageButtonOptions": {"format": "png", "scale": 3}})]
    parts += [f.to_html(full_html=False, include_plotlyjs=False,
                        config={"toImageButtonOptions": {"format": "png", "scale": 3}}) for f in figures[1:]]
    return ("<html><head><meta charset='utf-8'><title>crossmodal explorer</title></head><body>"
            + "".join(f"<div style='display:inline-block;width:32%'>{p}</div>" for p in parts) + "</body></html>")


info[2].download_button("Export as HTML", data=standalone_html,
                        file_name=f"crossmodal_explorer_{appdata.store.slug(app.name)}.html", mime="text/html", on_click="ignore")

# the poster figure: these three panels as one matplotlib figure (crossmodal_core.figures), drawn on click
with st.expander("Poster figure: the three panels as one figure (PDF, SVG, 300-dpi PNG)"):
    from crossmodal_core import figures as poster_figures

    poster_cols = st.columns([2, 1, 1, 1])
    poster_top = poster_cols[0].number_input(
        "Coloured classes", 1, poster_figures.MAX_TOP_N, min(poster_figures.DEFAULT_TOP_N, max(1, len(class_names))),
        key="explorer_poster_top", help="The largest classes get a colour each (the same in every panel); "
                                        "the others are drawn in grey, and the legend says so.")

    def poster_bytes(fmt: str, shown: tuple = tuple(p for _, p in panels)) -> bytes:  # the panels drawn above
        fig = poster_figures.poster_figure(
            shown, labels_all, class_names, pair, top_n=int(poster_top),
            label_title=color_label or label,
            title=app.name + ("  (SYNTHETIC data)" if app.dataset.is_synthetic else ""))
        return poster_figures.figure_bytes(fig, fmt)

    for col, fmt in zip(poster_cols[1:], poster_figures.FORMATS):
        col.download_button(
            fmt.upper(), data=lambda fmt=fmt: poster_bytes(fmt), mime=poster_figures.MIME_TYPES[fmt],
            file_name=poster_figures.figure_filename("poster", app.name, [p.title for _, p in panels], fmt),
            on_click="ignore", key=f"explorer_poster_{fmt}")
    poster_cols[0].caption("Or from the command line: `python -m crossmodal_core figure poster --dataset ID "
                           "--models original,ccca,tnn-ccca --out poster.pdf`.")

if selection:
    rows = sorted(selection)[:50]
    st.dataframe({"item": [str(app.dataset.item_ids[r]) for r in rows],
                  "description": appdata.item_text(app, rows, color_label or label)}, hide_index=True)
