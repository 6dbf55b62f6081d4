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
        rows.append({"model": m.title, "views": " / ".join(m.views),
                     f"MAP {pair[0]}→{pair[1]}": None if mp[0] is None else round(100 * mp[0], 2),
                     f"MAP {pair[1]}→{pair[0]}": None if mp[1] is None else round(100 * mp[1], 2),
                     "train items": m.info.get("n_train"), "fit (s)": m.info.get("fit_seconds")})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(f"MAP (%) on the {len(test_rows):,} test items, relevance = same '{label}'.")
else:
    st.info(f"No model trained yet on this dataset for {pair[0]} ↔ {pair[1]} with label '{label}'.")
_shared.train_button(app, label, pair)
with st.expander("Train another model"):
    choice = st.multiselect("Models", appdata.model_names(), format_func=appdata.model_title, default=[])
    if choice:
        _shared.train_button(app, label, pair, tuple(choice), key="train_chosen")

st.subheader("Results table (poster layout)")
rows = appdata.load_results()
if rows:
    table = appdata.poster_table(rows)
    st.dataframe(table, width="stretch")
    st.caption("MAP (%) per direction, mean ± std over folds: the reference results committed in "
               "`assets/results/`, and your own runs of `python -m crossmodal_core evaluate` "
               "(when both are present, columns are marked *[reference]* and *[yours]*).")
else:
    st.info("No results table yet: run `python -m crossmodal_core evaluate` to write one.")
