"""Retrieval: one query's top-K (playable, readable), then error analysis over every query."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossmodal_core import appdata, figures_analysis
from crossmodal_core.appdata import urlstate
from app_pages import _shared

st.title("Retrieval")
app = _shared.current_dataset()
if app is None:
    st.stop()
label = _shared.current_label(app)
pair = _shared.current_pair(app)
trained = [_shared.loaded(m) for m in _shared.trained_models(app, label, pair)]
if not trained:
    st.info(f"No model is trained for {pair[0]} ↔ {pair[1]} with label '{label}' yet.")
    _shared.train_button(app, label, pair, key="retrieval_train")
    st.stop()

ds = app.dataset
by_id = {m.id: m for m in trained}
_, class_names = appdata.labels_for(ds, label)
url = _shared.url_state("retrieval")
url_model = url.choice(urlstate.MODEL_KEY, list(by_id), next(iter(by_id)), what="model",
                       encode=lambda i: by_id[i].name, describe=lambda i: by_id[i].title)
url_direction = url.choice(urlstate.DIRECTION_KEY, [pair, pair[::-1]], pair, what="direction",
                           encode=urlstate.encode_pair, describe=lambda d: f"{d[0]} → {d[1]}")
c = st.columns([2, 2, 1])
model_id = c[0].selectbox("Model", list(by_id), format_func=lambda i: by_id[i].title, key="retrieval_model",
                          index=list(by_id).index(url_model))
direction = c[1].radio("Direction", [pair, pair[::-1]], format_func=lambda d: f"{d[0]} → {d[1]}",
                       horizontal=True, key="retrieval_direction", index=[pair, pair[::-1]].index(url_direction))
k = c[2].number_input("Top K", 1, 50, url.integer(urlstate.TOP_K_KEY, 1, 50, 10, what="top K"), key="retrieval_k")
model = by_id[model_id]


def model_key(m) -> str:
    """The stored model's folder plus when it was trained: a retrain into the same folder is a new key."""
    return f"{m.path}@{m.info.get('trained_at')}"


@st.cache_resource(max_entries=8, show_spinner=False)
def scored_view(dataset_key: str, key: str, qv: str, gv: str, label_name: str) -> appdata.RetrievalView:
    """One view per (model, direction, label): its similarities are computed once, for every widget."""
    m = next(t for t in trained if model_key(t) == key)
    return appdata.retrieval_view(app, m, qv, gv, label_name)


rv = scored_view(app.key, model_key(model), direction[0], direction[1], label)
test_rows = rv.rows
pos_of_row = {int(r): i for i, r in enumerate(test_rows)}


@st.cache_data(max_entries=4, show_spinner=False)
def descriptions(dataset_key: str, label_name: str) -> list[str]:
    return appdata.item_text(app, test_rows, label_name)


texts = descriptions(app.key, label)

# ---------------------------------------------------------------- query choice
st.subheader("Query")
# a link's query is an item id of the test set; it reopens as "from the list"
pos_by_id = {str(ds.item_ids[r]): i for i, r in enumerate(test_rows)} if urlstate.QUERY_KEY in url else {}
url_query = url.lookup(urlstate.QUERY_KEY, pos_by_id, None, what="query item", describe=lambda _: "the first query")
source = st.radio("Pick the query", ["from the list", "random", "explorer selection"], horizontal=True,
                  key="retrieval_source")
query_pos = st.session_state.get("retrieval_query_pos", 0)
if source == "from the list":
    needle = st.text_input("Search by title, lyrics or class", key="retrieval_search").strip().lower()
    matches = [i for i, t in enumerate(texts) if needle in t.lower()] if needle else list(range(len(texts)))
    if not matches:
        st.warning("No test item matches that search.")
        st.stop()
    shown = matches[:2000]
    if url_query is not None and url_query not in shown and url_query in matches:
        shown = [url_query] + shown
    query_pos = st.selectbox(f"Query ({len(matches):,} match)", shown, format_func=lambda i: texts[i],
                             key="retrieval_query_list", index=shown.index(url_query) if url_query in shown else 0)
elif source == "random":
    if st.button("Another random query") or "retrieval_random" not in st.session_state:
        st.session_state["retrieval_random"] = int(np.random.default_rng().integers(len(test_rows)))
    query_pos = st.session_state["retrieval_random"]
else:
    chosen = [pos_of_row[r] for r in (st.session_state.get(_shared.SELECTION) or []) if r in pos_of_row]
    if not chosen:
        st.info("Select points in the Embedding explorer first (click, lasso or box); using the first test item.")
        chosen = [0]
    query_pos = st.selectbox("Selected item", chosen, format_func=lambda i: texts[i], key="retrieval_query_sel")
query_pos = int(query_pos)
query_row = int(test_rows[query_pos])
_shared.url_notices("retrieval")


@st.cache_data(max_entries=256, show_spinner=False)
def audio(dataset_key: str, row: int):
    return appdata.audio_file(app, row)


@st.cache_data(max_entries=256, show_spinner=False)
def svg(dataset_key: str, row: int):
    try:
        return appdata.score_svg(app, row)
    except Exception as exc:  # an unrenderable score shows a note, not a crash
        return f"error: {exc}"


RASTERS = appdata.raster_views(app)


@st.cache_data(max_entries=1024, show_spinner=False)
def score_png(dataset_key: str, view: str, row: int) -> bytes:
    """The item's score raster as PNG, from the view array (about 3 ms; never re-engraved)."""
    return appdata.item_png(app, row, view)


def show_item(view: str, row: int) -> None:
    """The item as its modality: score image, audio player, score snippet or lyrics."""
    if view in RASTERS:  # the engraving raster the model read, black ink on white
        # PNG kept as is: "auto" would re-encode a grayscale image as JPEG (smeared staff lines)
        st.image(score_png(app.key, view, int(row)), width="stretch", output_format="PNG")
        return
    if appdata.has_media(app):
        if view.startswith("audio"):
            data, mime = audio(app.key, row)
            st.audio(data, format=mime)
            return
        if view.startswith("sheet"):
            image = svg(app.key, row)
            if image and image.startswith("error:"):
                st.caption(f"score not rendered ({image[6:].strip()})")
            elif image:
                st.image(image, width="stretch")
            return
        if view.startswith("lyric"):
            st.markdown(f"> {app.fragments[row].lyrics}")
            return
    st.caption(f"{view} features (no media for this dataset)")


q = appdata.query_results(rv, query_pos, int(k))
qc = st.columns([3, 1, 1])
with qc[0]:
    st.markdown(f"**{direction[0]} query:** {texts[query_pos]}")
    show_item(direction[0], query_row)
    if direction[1] in RASTERS and direction[0] not in RASTERS:  # what a perfect model would put first
        with st.expander(f"Its own {direction[1]} (the true pair, rank {q['pair_rank']})"):
            show_item(direction[1], query_row)
qc[1].metric("AP of this query", f"{100 * q['ap']:.1f} %", help=f"{q['n_relevant']} relevant item(s) in the gallery")
qc[2].metric("Rank of its true pair", q["pair_rank"], help="1 = the paired item is the top result")

st.subheader(f"Top {len(q['rows'])} {direction[1]} results ({model.title})")
RELEVANT, IRRELEVANT, PAIR = ":green[:material/check_circle: relevant]", ":red[:material/cancel: not relevant]", \
    ":orange[:material/star: true pair]"
if not appdata.has_media(app) and direction[1] not in RASTERS:  # features only: a compact table
    st.dataframe(pd.DataFrame({
        "rank": np.arange(1, len(q["rows"]) + 1), "score": np.round(q["scores"], 3),
        "relevant": np.where(q["relevant"], "yes", "no"), "true pair": np.where(q["is_pair"], "yes", ""),
        "item": [texts[pos_of_row[int(r)]] for r in q["rows"]]}), hide_index=True)
    st.caption(f"{direction[1]} items are feature vectors in this dataset: nothing to play or show.")
elif direction[1] in RASTERS:  # score images: a grid, each at about its own width (crisp, comparable)
    GRID = 3
    results = list(zip(q["rows"], q["scores"], q["relevant"], q["is_pair"]))
    for start in range(0, len(results), GRID):
        cells = st.columns(GRID)
        for cell, (rank, (row, score, rel, is_pair)) in zip(cells, enumerate(results[start:start + GRID], start + 1)):
            with cell.container(border=True):
                st.markdown(f"**#{rank}** · score {score:.3f} · {RELEVANT if rel else IRRELEVANT}"
                            + (f" · {PAIR}" if is_pair else ""))
                show_item(direction[1], int(row))
                st.caption(texts[pos_of_row[int(row)]])
else:
    for rank, (row, score, rel, is_pair) in enumerate(zip(q["rows"], q["scores"], q["relevant"], q["is_pair"]), 1):
        with st.container(border=True):
            rc = st.columns([1, 6])
            rc[0].markdown(f"**#{rank}**  \nscore {score:.3f}  \n{RELEVANT if rel else IRRELEVANT}"
                           + (f"  \n{PAIR}" if is_pair else ""))
            with rc[1]:
                st.markdown(texts[pos_of_row[int(row)]])
                show_item(direction[1], int(row))

# the poster's "visualised retrieval results": this query and its top results as one figure, drawn on click
from crossmodal_core import figures as poster_figures  # noqa: E402 -- kept with the block that uses it

fig_k = min(int(k), 8)
fig_cols = st.columns([3, 1, 1, 1])
fig_cols[0].caption(f"This query and its top {fig_k} as one figure (relevance marks, "
                    + ("score images, " if set(direction) & set(RASTERS) else "")
                    + ("score snippets and log-mel thumbnails)" if appdata.has_media(app) else "feature strips)")
                    + f"; or `python -m crossmodal_core figure retrieval --model {model.name} --query ID`.")
for col, fmt in zip(fig_cols[1:], poster_figures.FORMATS):
    col.download_button(
        f"Figure {fmt.upper()}", mime=poster_figures.MIME_TYPES[fmt], on_click="ignore", key=f"retrieval_figure_{fmt}",
        data=lambda fmt=fmt, rv=rv, pos=query_pos: poster_figures.figure_bytes(  # bound now: runs on click
            poster_figures.retrieval_figure(app, rv, pos, fig_k, class_names=class_names), fmt),
        file_name=poster_figures.figure_filename("retrieval", app.name, [model.name, str(ds.item_ids[query_row])], fmt))

# ---------------------------------------------------------------- error analysis
st.header("Error analysis")


@st.cache_data(max_entries=16, show_spinner="Scoring every test query...")
def analysis(key: str, qv: str, gv: str, label_name: str) -> dict:
    return appdata.error_analysis(scored_view(app.key, key, qv, gv, label_name), class_names)


@st.cache_data(max_entries=32, show_spinner="Precision-recall curves...")
def curve(key: str, qv: str, gv: str, label_name: str):
    return appdata.pr_curve(scored_view(app.key, key, qv, gv, label_name))


res = analysis(model_key(model), direction[0], direction[1], label)
st.markdown(f"**MAP {direction[0]} → {direction[1]}: {100 * res['map']:.2f} %** over {len(res['ap']):,} test queries.")
VIEWS = ["Worst queries", "Per-class AP", "Top-1 confusion", "Precision-recall"]
# one view at a time (tabs would draw every chart on every rerun)
view_slug = lambda v: v.lower().replace(" ", "-")  # noqa: E731 - "Per-class AP" -> "per-class-ap"
view = st.segmented_control("Show", VIEWS, key="retrieval_analysis",
                            default=url.choice(urlstate.ANALYSIS_KEY, VIEWS, VIEWS[0], what="analysis view",
                                               encode=view_slug, describe=str)) or VIEWS[0]
_shared.share("retrieval", {urlstate.MODEL_KEY: model.name, urlstate.DIRECTION_KEY: urlstate.encode_pair(direction),
                            urlstate.TOP_K_KEY: int(k), urlstate.QUERY_KEY: str(ds.item_ids[query_row]),
                            urlstate.ANALYSIS_KEY: view_slug(view)})
figure_title = f"{model.title}, {direction[0]} → {direction[1]} (relevance: {label})"


@st.cache_data(max_entries=16, show_spinner="Finding the top-ranked wrong results...")
def worst_examples(key: str, qv: str, gv: str, label_name: str) -> list[dict]:
    return appdata.worst_query_examples(scored_view(app.key, key, qv, gv, label_name),
                                        analysis(key, qv, gv, label_name)["worst"], texts, class_names)


@st.cache_data(max_entries=48, show_spinner="Drawing the figure...")
def analysis_figure(kind: str, fmt: str, key: str, qv: str, gv: str, label_name: str, title: str) -> bytes:
    r = analysis(key, qv, gv, label_name)
    if kind == "per_class":
        fig = figures_analysis.per_class_ap_figure(r["per_class"], mean_ap=r["map"], title=f"Per-class AP: {title}")
    elif kind == "confusion":
        fig = figures_analysis.confusion_figure(r["confusion"], r["confusion_classes"], max_classes=60,
                                                title=f"Top-1 confusion: {title}")
    else:
        fig = figures_analysis.worst_queries_figure(worst_examples(key, qv, gv, label_name),
                                                    title=f"Worst queries: {title}")
    return figures_analysis.figure_bytes(fig, fmt)


def figure_downloads(kind: str) -> None:
    """PNG (300 dpi) / SVG / PDF of the view's matplotlib figure, for a poster; drawn on click
    (a callable: deferred, so a visit that downloads nothing draws nothing)."""
    cols = st.columns(len(figures_analysis.FIGURE_FORMATS) + 2)
    stem = appdata.store.slug(f"{kind}_{model.name}_{direction[0]}-{direction[1]}")
    for col, (fmt, mime) in zip(cols, figures_analysis.FIGURE_FORMATS.items()):
        col.download_button(fmt.upper(), lambda fmt=fmt: analysis_figure(kind, fmt, model_key(model), direction[0],
                                                                         direction[1], label, figure_title),
                            file_name=f"{stem}.{fmt}", mime=mime,
                            key=f"download_{kind}_{fmt}", icon=":material/download:")


if view == VIEWS[0]:
    worst = res["worst"]
    examples = worst_examples(model_key(model), direction[0], direction[1], label)
    st.dataframe(pd.DataFrame({
        "query": [e["text"] for e in examples], "class": [e["class"] for e in examples],
        "AP (%)": np.round([100 * e["ap"] for e in examples], 2),
        "top-ranked wrong results": ["; ".join(f"#{w['rank']} {w['class']}" for w in e["wrong"]) for e in examples]}),
        hide_index=True)
    figure_downloads("worst_queries")
    # media on demand: engraving and synthesis of a dozen items would slow every visit
    if appdata.has_media(app) and st.toggle("Play and show the worst queries and their wrong results",
                                            key="retrieval_worst_media"):
        n_show = st.slider("Queries", 1, len(examples), min(3, len(examples)), key="retrieval_worst_n")
        for e in examples[:n_show]:
            with st.container(border=True):
                st.markdown(f"**{direction[0]} query** (AP {100 * e['ap']:.1f} %): {e['text']}")
                show_item(direction[0], e["row"])
                wc = st.columns(max(1, len(e["wrong"])))
                for col, w in zip(wc, e["wrong"]):
                    with col:
                        st.markdown(f"{IRRELEVANT} **#{w['rank']}** score {w['score']:.3f}  \n{w['text']}")
                        show_item(direction[1], w["row"])
    st.caption("Pick one with *from the list* above (search its title) to see everything it retrieved.")
elif view == VIEWS[1]:
    # sorted from the best class to the worst, as on the exported figure
    per_class = dict(sorted(res["per_class"].items(),
                            key=lambda kv: (not np.isfinite(kv[1]), -np.nan_to_num(kv[1]), kv[0])))
    if len(per_class) > 60:
        st.caption(f"{len(per_class)} classes: showing the 60 with the lowest AP.")
        per_class = dict(list(per_class.items())[-60:])
    fig = go.Figure(go.Bar(x=list(per_class), y=[100 * v for v in per_class.values()]))
    fig.add_hline(y=100 * res["map"], line_dash="dash", annotation_text=f"MAP {100 * res['map']:.1f} %")
    fig.update_layout(yaxis_title="AP (%)", height=380, margin=dict(t=20), template="plotly_white")
    st.plotly_chart(fig, key="per_class_ap")
    figure_downloads("per_class")
elif view == VIEWS[2]:
    names = res["confusion_classes"]
    if len(names) > 60:
        st.info(f"{len(names)} classes is too many for a readable confusion view; pick a coarser relevance label.")
    else:
        conf = res["confusion"]
        norm = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
        fig = go.Figure(go.Heatmap(z=norm, x=names, y=names, colorscale="Blues", text=conf,
                                   hovertemplate="query %{y} → top-1 %{x}: %{text}<extra></extra>"))
        fig.update_layout(xaxis_title="class of the top-1 result", yaxis_title="class of the query",
                          yaxis_autorange="reversed", height=480, margin=dict(t=20), template="plotly_white")
        st.plotly_chart(fig, key="confusion")
        figure_downloads("confusion")

else:
    fig = go.Figure()
    for m in trained:
        r, p = curve(model_key(m), direction[0], direction[1], label)
        fig.add_trace(go.Scatter(x=r, y=p, mode="lines+markers", name=m.title))
    fig.update_layout(xaxis_title="recall", yaxis_title="precision", height=420, margin=dict(t=20),
                      template="plotly_white", xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    st.plotly_chart(fig, key="pr_curves")
