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
    top[1].warning(f"{method.upper()} not computed yet for panel(s) " + ", ".join(str(i + 1) for i in missing)
                   + (": showing PCA meanwhile." if method == "umap" else
                      f": above {appdata.panels.PCA_ON_LOAD_MAX:,} items a map is computed on request."))
    if top[2].button(f"Compute {method.upper()} (stored on disk)", type="primary"):
        bar = _shared.StreamlitProgress(f"starting {method.upper()}")
        for n, i in enumerate(missing):
            model = panels[i][0]

            def step(f, msg, n=n):
                bar((n + f) / len(missing), f"panel {missing[n] + 1}: {msg}")

            appdata.compute_panel_projection(app, model, pair, method, label, progress=step)
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
# a hover label cannot show the image itself (see the score images under the panels): it says where it is
HOVER_HINT = "<br><i>click: its score image under the panels</i>" if appdata.raster_views(app) else ""
palette = qualitative.Dark24 + qualitative.Light24


@st.cache_data(max_entries=8, show_spinner=False)
def hover_texts(dataset_key: str, rows: tuple, label_name: str) -> list[str]:
    return appdata.item_text(app, list(rows), label_name)


def points_key(panel: appdata.PanelData) -> str:
    """Digest of a panel's rows and coordinates (16 MB at 10⁶ items: computed once per panel and run)."""
    points = hashlib.sha1(panel.rows.tobytes())
    for xy in panel.coords:
        points.update(np.ascontiguousarray(xy).tobytes())
    return points.hexdigest()


@st.cache_resource(max_entries=24, show_spinner=False)
def drawing(dataset_key: str, points: str, _panel: appdata.PanelData) -> appdata.PanelDrawing:
    """Which points the panel sends (all, or a stated sample over the density of all)."""
    return appdata.plan_drawing(_panel)


def figure(panel: appdata.PanelData, points: str | None = None) -> go.Figure:
    """The panel's figure, built once per (points, colouring, selection) and kept in memory:
    building and validating ~20 plotly traces costs about 40 ms a panel, a fifth of a warm visit.
    ``points``: the panel's :func:`points_key` when already computed."""
    points = points or points_key(panel)
    selected = np.asarray(sorted(selection), dtype=np.int64)
    return _figure(app.key, points, panel.title, panel.method, panel.joint, tuple(pair),
                   color_label or label, hashlib.sha1(selected.tobytes()).hexdigest(), _panel=panel,
                   _selected=selected, _drawing=drawing(app.key, points, _panel=panel))


@st.cache_resource(max_entries=24, show_spinner=False)
def _figure(dataset_key: str, points: str, title: str, method: str, joint: bool, pair: tuple, colour: str,
            selected_key: str, _panel: appdata.PanelData, _selected: np.ndarray,
            _drawing: appdata.PanelDrawing) -> go.Figure:
    panel, plan = _panel, _drawing
    # WebGL above a few thousand points (SVG keeps small panels crisp in the SVG export)
    Trace = go.Scattergl if plan.renderer == "webgl" else go.Scatter
    fig = go.Figure()
    if plan.density is not None:  # every point, binned, under the drawn sample
        z = np.log1p(plan.density.counts.astype(float))
        z[plan.density.counts == 0] = np.nan  # empty bins stay transparent
        fig.add_trace(go.Heatmap(x=plan.density.x_centres, y=plan.density.y_centres, z=z, colorscale="Greys",
                                 zmin=0, showscale=False, hoverinfo="skip", opacity=0.55, name="density of all"))
    pos = plan.positions
    rows = panel.rows[pos]
    lab = labels_all[rows]
    texts = np.array(hover_texts(app.key, tuple(rows.tolist()), color_label or label))
    classes = np.unique(lab)
    many = len(classes) > 24
    opacity = 0.25 if len(_selected) else 0.8
    size = 6 if len(pos) <= 5_000 else 4
    for m, (view, xy_all) in enumerate(zip(pair, panel.coords)):
        xy = xy_all[pos]
        if many:
            fig.add_trace(Trace(
                x=xy[:, 0], y=xy[:, 1], mode="markers", name=view, showlegend=False,
                marker=dict(symbol=SYMBOLS[m], size=size, color=lab, colorscale="Turbo", opacity=opacity),
                customdata=rows, text=texts, hovertemplate=f"<b>{view}</b> %{{text}}{HOVER_HINT}<extra></extra>"))
            continue
        for c in classes:
            keep = lab == c
            fig.add_trace(Trace(
                x=xy[keep, 0], y=xy[keep, 1], mode="markers", name=f"{class_names[c]} · {view}",
                legendgroup=f"class-{c}", showlegend=False,
                marker=dict(symbol=SYMBOLS[m], size=size, color=palette[int(c) % len(palette)], opacity=opacity,
                            line=dict(width=0)),
                customdata=rows[keep], text=texts[keep],
                hovertemplate=f"<b>{view}</b> %{{text}}{HOVER_HINT}<extra></extra>"))
    if not many:  # legend: one entry per class (colour; click hides it) and one per modality (marker)
        for c in classes:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=class_names[c],
                                     legendgroup=f"class-{c}",
                                     marker=dict(symbol="square", size=9, color=palette[int(c) % len(palette)])))
    for m, view in enumerate(pair):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{view} (marker)",
                                 legendgroup=f"view-{view}",
                                 marker=dict(symbol=SYMBOLS[m], size=9, color="#555")))
    if len(_selected):
        hl, _ = appdata.highlight_positions(panel, _selected)
        hl_rows = panel.rows[hl]
        hl_texts = np.array(hover_texts(app.key, tuple(hl_rows.tolist()), color_label or label))
        for m, (view, xy) in enumerate(zip(pair, panel.coords)):
            fig.add_trace(Trace(
                x=xy[hl, 0], y=xy[hl, 1], mode="markers", name=f"selected · {view}",
                marker=dict(symbol=SYMBOLS[m], size=11 if len(hl) <= 50 else 8, color="rgba(0,0,0,0)",
                            line=dict(width=2 if len(hl) <= 50 else 1, color="black")),
                customdata=hl_rows, text=hl_texts,
                hovertemplate=f"<b>selected {view}</b> %{{text}}{HOVER_HINT}<extra></extra>"))
    kind = panel.method.upper() + ("" if panel.joint else " (each modality mapped separately)")
    fig.update_layout(
        title=dict(text=f"{panel.title}<br><sup>{kind}</sup>", x=0.5, xanchor="center"),
        # pan, not lasso, by default: Streamlit's chart turns click-to-select off while the lasso or
        # box tool is active (clickmode "event"), and a click is how one item's score image is shown;
        # the lasso and box are one click away in the panel's toolbar
        height=520, margin=dict(l=10, r=10, t=70, b=10), dragmode="pan",
        legend=dict(orientation="h", yanchor="top", y=-0.02, font=dict(size=10)),
        xaxis=dict(showticklabels=False, zeroline=False), yaxis=dict(showticklabels=False, zeroline=False),
        template="plotly_white")
    return fig


def on_select(key: str, panel: appdata.PanelData) -> None:
    # a box / lasso counts every item in the region, drawn or not (the panel may show a sample)
    st.session_state[_shared.SELECTION] = appdata.selection_rows(panel, st.session_state.get(key)).tolist()


figures = []
cols = st.columns(3)
for i, (col, (model, panel)) in enumerate(zip(cols, panels)):
    if panel is None:  # a large test set: not even PCA is computed on load
        col.info("Not projected yet: the button above computes the map once and stores it.")
        continue
    digest = points_key(panel)
    fig = figure(panel, digest)
    figures.append(fig)
    with col:
        key = f"explorer_panel_{i}"
        st.plotly_chart(fig, key=key, on_select=lambda key=key, panel=panel: on_select(key, panel),
                        selection_mode=("points", "lasso", "box"),
                        config={"displaylogo": False,
                                "toImageButtonOptions": {"format": "svg", "filename": f"crossmodal_{panel.title}",
                                                         "scale": 2}})
        if not panel.stored and method == "umap":
            st.caption("PCA shown until the UMAP is computed.")
        st.caption(f"{appdata.drawing_notice(drawing(app.key, digest, _panel=panel), len(pair))} "
                   f"Map: {panel.description}.")

# Score images of the clicked / selected items. Plotly's hover text cannot hold an image (its
# hovertemplate allows a few text tags, no <img>) and st.plotly_chart sends Python clicks and
# selections, not hovers; so a click (or lasso) shows the items' rasters here, under the panels.
RASTERS = appdata.raster_views(app)
image_view = next((v for v in pair if v in RASTERS), None) or (RASTERS[0] if RASTERS else None)
THUMBNAILS = 9


@st.cache_data(max_entries=1024, show_spinner=False)
def score_png(dataset_key: str, view: str, row: int) -> bytes:
    """The item's raster as PNG, from the view array (about 3 ms; never re-engraved)."""
    return appdata.item_png(app, row, view)


if image_view is not None:
    shown = sorted(selection)[:THUMBNAILS]
    with st.container(border=True):
        if shown:
            st.markdown(f"**{image_view} of the selected items**"
                        + (f" (the first {THUMBNAILS} of {len(selection):,})" if len(selection) > THUMBNAILS else ""))
            thumb_cols = st.columns(3)
            for n, (r, text) in enumerate(zip(shown, appdata.item_text(app, shown, color_label or label))):
                thumb_cols[n % 3].image(score_png(app.key, image_view, int(r)), caption=text, width="stretch",
                                        output_format="PNG")
        else:
            st.caption(f"Click a point in a panel (or select several with the lasso / box tool of its toolbar) "
                       f"to see the items' {image_view} here: the engraving raster the models read.")

info = st.columns([3, 1, 1])
if selection:
    info[0].markdown(f"**{len(selection)} item(s) selected** (highlighted in every panel"
                     + (f"; a seeded sample of {appdata.panels.HIGHLIGHT_MAX:,} outlined per panel"
                        if len(selection) > appdata.panels.HIGHLIGHT_MAX else "")
                     + "). Open **Retrieval** to query with them.")
    if info[1].button("Clear selection"):
        st.session_state[_shared.SELECTION] = []
        st.rerun()
else:
    info[0].caption("Click a point, or draw a lasso / box (tools in the panel's toolbar), in any panel to "
                    "highlight the same items everywhere. "
                    "The camera icon saves a panel as SVG; the button on the right exports an HTML page "
                    "whose camera icon saves PNG.")


def standalone_html() -> str:
    parts = [figures[0].to_html(full_html=False, include_plotlyjs=True,
                                config={"toImageButtonOptions": {"format": "png", "scale": 3}})]
    parts += [f.to_html(full_html=False, include_plotlyjs=False,
                        config={"toImageButtonOptions": {"format": "png", "scale": 3}}) for f in figures[1:]]
    return ("<html><head><meta charset='utf-8'><title>crossmodal explorer</title></head><body>"
            + "".join(f"<div style='display:inline-block;width:32%'>{p}</div>" for p in parts) + "</body></html>")


if figures:
    info[2].download_button("Export as HTML", data=standalone_html,
                            file_name=f"crossmodal_explorer_{appdata.store.slug(app.name)}.html", mime="text/html",
                            on_click="ignore")

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
