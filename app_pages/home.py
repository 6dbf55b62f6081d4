"""Home: choose the data, see what is trained, read the results table, train what is missing."""

import pandas as pd
import streamlit as st

from crossmodal_core import appdata
from app_pages import _shared

st.title("crossmodal")
st.markdown(
    "Cross-modal retrieval in one shared space: a query in one modality (audio, sheet music, "
    "lyrics, video) ranks the items of another. Pick the dataset, the label that decides what "
    "counts as relevant and the two modalities in the sidebar; then open the **Embedding explorer**, "
    "**Retrieval** or **Alignment** pages."
)

with st.expander("Add a dataset: upload a feature file (.npz / .h5)"):
    upload = st.file_uploader("Feature file in the crossmodal .npz/.h5 layout", type=["npz", "h5", "hdf5"])
    if upload is not None and st.button("Add this dataset"):
        try:
            entry = appdata.save_upload(upload.name, upload.getvalue())
        except Exception as exc:  # a bad file must not break the page
            st.error(f"{upload.name} cannot be used: {exc}")
        else:
            _shared.dataset_entries.clear()
            st.session_state[_shared.DATASET] = entry.id
            st.rerun()

with st.expander("Build a dataset from your own scores (MusicXML, MXL, MIDI, Humdrum)"):
    st.markdown(f"Put your files, one work per file with lyrics under the notes, in a folder inside "
                f"`{appdata.store.scores_dir()}` on this server (e.g. `.../scores/my_songs/`), then choose it "
                "here. They are cut into phrases, synthesised and featurised as the embedded dataset is; "
                "files that cannot be used are skipped and listed with the reason.")
    score_folders = appdata.score_folders()
    if not score_folders:
        st.info("No folder of scores there yet.")
    else:
        folder = st.selectbox("Folder of scores", score_folders, key="scores_folder")
        if st.button("Build the dataset", key="scores_build"):
            bar = _shared.StreamlitProgress("reading the scores...")
            try:
                built, report = appdata.build_from_scores(folder, progress=bar)
            except Exception as exc:  # nothing usable, or a bad folder: say why, keep the page
                st.error(f"No dataset built from {folder}: {exc}")
            else:
                bar.done()
                _shared.dataset_entries.clear()
                st.session_state["scores_built"] = {"id": built.id, "label": built.label, "report": report}
    last = st.session_state.get("scores_built")
    if last:
        rep = last["report"]
        st.success(f"Built **{last['label']}**: {rep['n_used']} of {rep['n_files']} files used, "
                   f"{rep['n_fragments']} fragments, {rep['n_folds']} folds by work"
                   + (f" ({rep['folds_note']})" if rep.get("folds_note") else "") + ".")
        skipped = [{"file": f["file"], "why skipped": f["reason"]} for f in rep["files"] if f["status"] == "skipped"]
        if skipped:
            st.dataframe(pd.DataFrame(skipped), hide_index=True)
        st.button("Open it", key="scores_open", on_click=st.session_state.update, args=({_shared.DATASET: last["id"]},))

app = _shared.current_dataset()
if app is None:
    st.stop()
ds = app.dataset
label = _shared.current_label(app)
pair = _shared.current_pair(app)
_shared.share("home", {})
train_rows, test_rows = appdata.split_indices(ds)

st.header(app.entry.label)
if ds.is_synthetic or app.entry.kind == "synthetic":
    st.warning("**Synthetic data.** " + (app.entry.note or "Generated features, not real recordings."))
cols = st.columns(4)
cols[0].metric("Items", f"{ds.n_items:,}")
cols[1].metric("Train / test", f"{len(train_rows):,} / {len(test_rows):,}")
labels, class_names = appdata.labels_for(ds, label)
cols[2].metric("Classes", f"{len(set(labels.tolist())):,}", help=f"label set: {label}")
cols[3].metric("Views", len(ds.view_names))
st.dataframe(pd.DataFrame([{"view": v, "shape per item": " × ".join(map(str, ds.views[v].shape[1:]))}
                           for v in ds.view_names]), hide_index=True, width="content")

st.subheader("Trained models")
trained = _shared.trained_models(app, label, pair)
if trained:
    rows = []
    for m in trained:
        mp = m.info.get("test_map") or [None, None]
        # what the model read: C-CCA the flat score_image_pix, TNN-C-CCA the raster itself (CNN)
        rows.append({"model": m.title, "views": " / ".join(m.info.get("input_views") or m.views),
                     f"MAP {pair[0]}→{pair[1]}": None if mp[0] is None else round(100 * mp[0], 2),
                     f"MAP {pair[1]}→{pair[0]}": None if mp[1] is None else round(100 * mp[1], 2),
                     "train items": m.info.get("n_train"), "fit (s)": m.info.get("fit_seconds")})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    sampled = next((m.info["test_map_sampled"] for m in trained if m.info.get("test_map_sampled")), None)
    st.caption(f"MAP (%) on the {len(test_rows):,} test items, relevance = same '{label}'."
               + (f" On a test set this large it is estimated from {sampled['queries'][0]:,} sampled queries "
                  f"per direction against all {sampled['of'][0]:,} test items "
                  f"(95 % interval about ±{100 * 1.96 * max(sampled['stderr']):.1f} points)." if sampled else ""))
else:
    st.info(f"No model trained yet on this dataset for {pair[0]} ↔ {pair[1]} with label '{label}'.")
_shared.train_button(app, label, pair)
with st.expander("Train another model"):
    choice = st.multiselect("Models", appdata.model_names(), format_func=appdata.model_title, default=[])
    if choice:
        _shared.train_button(app, label, pair, tuple(choice), key="train_chosen")

st.subheader("Results table (paper layout)")


@st.cache_data(max_entries=4, show_spinner=False)
def results_table(signature: tuple) -> appdata.PaperTable:
    return appdata.results_table()


@st.cache_data(max_entries=16, show_spinner="Preparing the download...")
def table_file(signature: tuple, fmt: str) -> bytes:
    return results_table(signature).export(fmt)


signature = appdata.results_signature()
table = results_table(signature)
if not table.empty:
    st.table(table.styled())
    st.caption(table.caption + " Reference results are committed in `assets/results/`; your own runs of "
               "`python -m crossmodal_core evaluate` are marked *[yours]*. The same table from the command "
               "line: `python -m crossmodal_core report --format latex`.")
    dl = st.columns(len(appdata.TABLE_DOWNLOADS))
    for col, (fmt, suffix, mime) in zip(dl, appdata.TABLE_DOWNLOADS):
        # a callable is run on click only: the images are drawn when asked for
        name = "LaTeX" if fmt == "latex" else fmt.upper()
        col.download_button(name, lambda fmt=fmt: table_file(signature, fmt),
                            file_name=f"results_table{suffix}", mime=mime, key=f"results_table_{fmt}",
                            icon=":material/download:")
    with st.expander("Hamming MAP of the hashing models · instance-level Recall@K (deep attention: R@20)"):
        hamming = appdata.hamming_table()
        if not hamming.empty:
            st.dataframe(hamming, hide_index=True)
        for title, frame in appdata.paired_tables():
            st.markdown(f"**{title}**")
            st.dataframe(frame)
else:
    st.info("No results table yet: run `python -m crossmodal_core evaluate` to write one.")
