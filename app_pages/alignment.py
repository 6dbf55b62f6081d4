"""Alignment: one song's phrases across sheet, lyrics and audio, as the chosen model sees them."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from crossmodal_core import appdata
from crossmodal_core.appdata import urlstate
from app_pages import _shared

st.title("Alignment: sheet ↔ lyrics ↔ audio")
app = _shared.current_dataset()
if app is None:
    st.stop()
if not appdata.has_media(app):
    st.info("Alignment needs the music dataset (scores with lyrics and synthesised audio). "
            "Pick **Music** in the sidebar dataset picker.")
    st.stop()

ds = app.dataset
label = _shared.current_label(app)
works = appdata.works(app)
work_ids = sorted((w for w, rows in works.items() if len(rows) >= 2), key=lambda w: appdata.work_title(app, w))
if not work_ids:
    st.warning("No song in this dataset has two or more phrases.")
    st.stop()

url = _shared.url_state("alignment")
c = st.columns([3, 1])
work = c[0].selectbox("Song", work_ids, format_func=lambda w: appdata.work_title(app, w), key="alignment_work",
                      index=work_ids.index(url.lookup(urlstate.WORK_KEY, {w: w for w in work_ids}, work_ids[0],
                                                      what="song", describe=lambda w: appdata.work_title(app, w))))
names = ["ugaar", "cca", "ccca", "tnn-ccca"]
trained_names = [n for n in names if appdata.find_trained(app, n, ("sheet", "lyrics"), label) is not None]
model_name = c[1].selectbox("Model", names, index=names.index(url.choice(
                                urlstate.MODEL_KEY, names, trained_names[0] if trained_names else names[0],
                                what="model", describe=appdata.model_title)),
                            format_func=appdata.model_title, key="alignment_model")
rows = works[work]
PAIRS = [("sheet", "lyrics"), ("sheet", "audio"), ("lyrics", "audio")]
pairs = [p for p in PAIRS if all(v in appdata.flat_views(ds) for v in p)]

# ---------------------------------------------------------------- which trained models cover the pairs
models = {}
for p in pairs:
    m = appdata.find_trained(app, model_name, p, label)
    if m is not None:
        models[p] = _shared.loaded(m)
missing = [p for p in pairs if p not in models]
if missing:
    st.info(f"{appdata.model_title(model_name)} is not trained for "
            + ", ".join(f"{a} ↔ {b}" for a, b in missing) + f" (label '{label}').")
    if st.button(f"Train {appdata.model_title(model_name)} for the missing pairs", type="primary"):
        bar = _shared.StreamlitProgress("starting")
        try:
            for i, p in enumerate(missing):
                if appdata.find_trained(app, model_name, p, label) is None:  # UGAAR covers all pairs at once
                    appdata.train_model(app, model_name, p, label,
                                        progress=lambda f, msg, i=i: bar((i + f) / len(missing), msg))
        except Exception as exc:
            bar.done()
            st.error(f"Training failed: {type(exc).__name__}: {exc}")
        else:
            bar.done()
            st.rerun()


@st.cache_data(max_entries=64, show_spinner=False)
def wav(dataset_key: str, row: int):
    return appdata.audio_wav(app, row)


@st.cache_data(max_entries=64, show_spinner="Engraving the score...")
def player(dataset_key: str, row: int):
    try:
        return appdata.player_html(app, row)
    except Exception as exc:  # an unrenderable score must not break the page
        return f"<p>score not rendered: {exc}</p>"


IMAGE_VIEW = appdata.score_image_view(app)


@st.cache_data(max_entries=256, show_spinner=False)
def score_png(dataset_key: str, view: str, row: int) -> bytes:
    """The phrase's stored score raster as PNG (the pixels the image models read)."""
    return appdata.item_png(app, row, view)


def show_score_image(row: int) -> None:
    if IMAGE_VIEW is not None:
        st.image(score_png(app.key, IMAGE_VIEW, int(row)), width="stretch", output_format="PNG",
                 caption=f"{IMAGE_VIEW}: the stored engraving raster the image models read")


# ---------------------------------------------------------------- similarity matrices
clicked = st.session_state.get("alignment_cell")
if clicked is None and urlstate.CELL_KEY in url:  # a link's cell: "sheet~lyrics.2.1" (1-based phrases)
    cells = {f"{urlstate.encode_pair(p)}.{i + 1}.{j + 1}": {"pair": p, "i": i, "j": j, "work": work}
             for p in pairs for i in range(len(rows)) for j in range(len(rows))}
    clicked = url.lookup(urlstate.CELL_KEY, cells, None, what="matrix cell", describe=lambda _: "no cell")
if models:
    st.subheader(f"Phrase-by-phrase similarity ({appdata.model_title(model_name)})")
    st.caption("Rows: phrases in the first modality; columns: in the second. The true pairs lie on the "
               "diagonal (outlined). A good model makes the diagonal the brightest cell of each row. "
               "Click a cell to play and show that pair.")
    cols = st.columns(len(pairs))
    for col, p in zip(cols, pairs):
        with col:
            if p not in models:
                st.caption(f"{p[0]} ↔ {p[1]}: not trained")
                continue
            sim = appdata.segment_similarity_matrix(app, models[p], rows, p[0], p[1])
            n = len(rows)
            ticks = [f"{i + 1}" for i in range(n)]
            fig = go.Figure(go.Heatmap(z=sim, x=ticks, y=ticks, colorscale="Viridis", zmin=-1, zmax=1,
                                       hoverinfo="skip"))
            # heatmap cells cannot be selected: an invisible point on every cell takes the clicks
            gx, gy = np.meshgrid(np.arange(n), np.arange(n))
            fig.add_trace(go.Scatter(
                x=[ticks[j] for j in gx.ravel()], y=[ticks[i] for i in gy.ravel()], mode="markers",
                marker=dict(size=max(6, min(28, 300 // n)), color="rgba(0,0,0,0)", symbol="square"),
                customdata=sim.ravel(), showlegend=False, name="cells",
                hovertemplate=f"{p[0]} phrase %{{y}} vs {p[1]} phrase %{{x}}: %{{customdata:.2f}}<extra></extra>"))
            fig.add_trace(go.Scatter(x=ticks, y=ticks, mode="markers", name="true pair",
                                     marker=dict(symbol="square-open", size=max(6, min(28, 300 // n)),
                                                 color="white", line=dict(width=2)),
                                     hoverinfo="skip", showlegend=False))
            correct = float(np.mean(np.argmax(sim, axis=1) == np.arange(n)))
            fig.update_layout(title=f"{p[0]} ↔ {p[1]} (row top-1 on diagonal: {100 * correct:.0f} %)",
                              xaxis_title=f"{p[1]} phrase", yaxis_title=f"{p[0]} phrase",
                              yaxis_autorange="reversed", height=420, margin=dict(l=10, r=10, t=50, b=10))
            event = st.plotly_chart(fig, key=f"alignment_{p[0]}_{p[1]}_{work}", on_select="rerun",
                                    selection_mode=("points",))
            points = (event or {}).get("selection", {}).get("points", []) if event else []
            if points:
                pt = points[0]
                clicked = {"pair": p, "i": int(pt["y"]) - 1, "j": int(pt["x"]) - 1, "work": work}
                st.session_state["alignment_cell"] = clicked

if clicked and clicked.get("work") == work:
    a, b = clicked["pair"]
    i, j = clicked["i"], clicked["j"]
    st.subheader(f"{a} phrase {i + 1} ↔ {b} phrase {j + 1}" + (" (true pair)" if i == j else ""))
    side = st.columns(2)
    for col, view, idx in ((side[0], a, i), (side[1], b, j)):
        with col:
            frag = app.fragments[rows[idx]]
            st.markdown(f"**{view}**, phrase {idx + 1} (bars {frag.measure_start}-{frag.measure_end})")
            if view == "lyrics":
                st.markdown(f"> {frag.lyrics}")
            elif view == "audio":
                st.audio(wav(app.key, rows[idx]), format="audio/wav", autoplay=True)
            else:
                html = player(app.key, rows[idx])
                if html:
                    st.iframe(html, height=260)
                show_score_image(rows[idx])

# ---------------------------------------------------------------- the whole song
st.subheader("The song, phrase by phrase")
st.caption("Score engraved with verovio from the music21 corpus; the audio is synthesised from the notes "
           "(a General MIDI choir sound: nothing sings the words). The sounding note is highlighted while "
           "the audio plays.")
phrase_text = [f"{n}. bars {app.fragments[r].measure_start}-{app.fragments[r].measure_end}: "
               f"“{app.fragments[r].lyrics}”" for n, r in enumerate(rows, 1)]
left, right = st.columns([2, 3])
with left:
    pick = st.radio("Phrase", range(len(rows)), format_func=lambda i: phrase_text[i], key=f"alignment_phrase_{work}",
                    label_visibility="collapsed",
                    index=url.integer(urlstate.PHRASE_KEY, 1, len(rows), 1, what="phrase") - 1
                    if url.raw(urlstate.WORK_KEY) == work else 0)
_shared.share("alignment", {urlstate.WORK_KEY: work, urlstate.MODEL_KEY: model_name, urlstate.PHRASE_KEY: pick + 1,
                            urlstate.CELL_KEY: f"{urlstate.encode_pair(clicked['pair'])}.{clicked['i'] + 1}."
                                               f"{clicked['j'] + 1}" if clicked and clicked.get("work") == work
                            else None})
with right:
    html = player(app.key, rows[pick])
    if html:
        st.iframe(html, height=280)
    else:
        st.audio(wav(app.key, rows[pick]), format="audio/wav")
    show_score_image(rows[pick])
