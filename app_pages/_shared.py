"""Sidebar choices and cached loaders shared by every page (thin wrappers over appdata)."""

from __future__ import annotations

import streamlit as st

from crossmodal_core import appdata
from crossmodal_core.appdata import urlstate
from crossmodal_core.data import catalog

DATASET = "dataset_id"
LABEL = "label_name"
PAIR = "pair"
SELECTION = "selection"  # dataset rows selected in the explorer


class StreamlitProgress:
    """``progress(fraction, message)`` callback drawing one ``st.progress`` bar."""

    def __init__(self, text: str = "working..."):
        self.bar = st.progress(0.0, text=text)

    def __call__(self, fraction: float, message: str) -> None:
        self.bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    def done(self) -> None:
        self.bar.empty()


@st.cache_data(ttl=30, show_spinner=False)
def dataset_entries() -> list[appdata.DatasetEntry]:
    return appdata.list_datasets()


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset...")
def _load(dataset_id: str, stamp: str) -> appdata.AppDataset:
    return appdata.load_dataset(dataset_id)


def _stamp(entry: appdata.DatasetEntry) -> str:
    path = entry.path
    if path is not None and path.exists():
        return f"{path.stat().st_mtime_ns}"
    return "missing"


def current_entry() -> appdata.DatasetEntry:
    entries = {e.id: e for e in dataset_entries()}
    return entries.get(st.session_state.get(DATASET)) or next(iter(entries.values()))


def current_dataset() -> appdata.AppDataset | None:
    """The chosen dataset, or None (with an error shown) when it cannot be opened."""
    entry = current_entry()
    if entry.kind == "synthetic" and not entry.path.exists():
        st.info("The synthetic VEGAS-shaped set is generated on first use (a few seconds).")
        if not st.button("Generate the synthetic dataset", type="primary"):
            return None
    try:
        return _load(entry.id, _stamp(entry))
    except (OSError, ValueError, KeyError) as exc:
        st.error(f"Cannot open **{entry.label}**: {exc}")
    return None


def current_label(app: appdata.AppDataset) -> str:
    choices = appdata.label_choices(app.dataset)
    label = st.session_state.get(LABEL)
    return label if label in choices else choices[0]


def current_pair(app: appdata.AppDataset) -> tuple[str, str]:
    pairs = appdata.view_pairs(app.dataset)
    pair = st.session_state.get(PAIR)
    return tuple(pair) if pair and tuple(pair) in pairs else pairs[0]


def sidebar() -> None:
    """Dataset, relevance label and modality pair pickers, kept on every page."""
    entries = dataset_entries()
    ids = [e.id for e in entries]
    labels = {e.id: e.label for e in entries}
    if st.session_state.get(DATASET) not in ids:
        st.session_state[DATASET] = ids[0]
    url = _url_start()
    st.session_state[DATASET] = url.choice(urlstate.DATASET_KEY, ids, st.session_state[DATASET], what="dataset",
                                           describe=labels.get, aliases=catalog.ALIASES)
    try:
        _sidebar_choices(url, ids, labels)
    finally:
        _url_end_of_sidebar()


def _sidebar_choices(url: urlstate.Reader, ids: list[str], labels: dict[str, str]) -> None:
    with st.sidebar:
        st.selectbox("Dataset", ids, format_func=labels.get, key=DATASET,
                     help="The embedded music dataset, feature files in assets/datasets/ or uploaded, "
                          "or the synthetic VEGAS-shaped set (clearly not real data).")
        entry = current_entry()
        if entry.kind == "synthetic":
            st.caption(":orange[**Synthetic data**] " + entry.note)
        if entry.kind == "synthetic" and not entry.path.exists():
            return
        try:
            app = _load(entry.id, _stamp(entry))
        except Exception:  # the page shows the error in full
            return
        choices = appdata.label_choices(app.dataset)
        if st.session_state.get(LABEL) not in choices:
            st.session_state[LABEL] = choices[0]
        st.session_state[LABEL] = url.choice(urlstate.LABEL_KEY, choices, st.session_state[LABEL],
                                             what="relevance label")
        st.selectbox("Relevance label", choices, key=LABEL,
                     help="Items with the same value of this label count as relevant to each other; "
                          f"'{appdata.PAIR_LABEL}' makes only the paired item relevant.")
        pairs = appdata.view_pairs(app.dataset)
        if not pairs:
            return
        if st.session_state.get(PAIR) not in pairs:
            st.session_state[PAIR] = pairs[0]
        st.session_state[PAIR] = url.choice(urlstate.PAIR_KEY, pairs, st.session_state[PAIR], what="modality pair",
                                            encode=urlstate.encode_pair)
        st.selectbox("Modalities", pairs, format_func=lambda p: f"{p[0]} \u2194 {p[1]}", key=PAIR)
        selection = st.session_state.get(SELECTION) or []
        if selection:
            st.caption(f"{len(selection)} item(s) selected in the explorer")


def trained_models(app: appdata.AppDataset, label: str, pair: tuple[str, str]) -> list[appdata.TrainedModel]:
    """Trained models covering both views of ``pair`` (newest of each name)."""
    latest: dict[str, appdata.TrainedModel] = {}
    for m in appdata.list_trained(app, label):
        if set(pair) <= set(m.views):
            if m.name not in latest or m.info.get("trained_at", 0) > latest[m.name].info.get("trained_at", 0):
                latest[m.name] = m
    order = {n: i for i, n in enumerate(appdata.model_names())}
    return sorted(latest.values(), key=lambda m: order.get(m.name, 99))


@st.cache_resource(max_entries=32, show_spinner=False)
def embeddings(path: str, mtime: float, views: tuple[str, ...], name: str, label: str) -> appdata.TrainedModel:
    """A trained model with its embeddings loaded once per file version."""
    from pathlib import Path

    info = appdata.store.read_json(Path(path) / "info.json")
    model = appdata.TrainedModel(name, views, label, {}, info, Path(path))
    appdata.load_embeddings(model)
    return model


def loaded(model: appdata.TrainedModel) -> appdata.TrainedModel:
    mtime = (model.path / "embeddings.npz").stat().st_mtime
    return embeddings(str(model.path), mtime, model.views, model.name, model.label_name)


def train_button(app: appdata.AppDataset, label: str, pair: tuple[str, str], wanted=None,
                 key: str = "train_missing") -> bool:
    """A button that trains the missing models of ``wanted`` with a progress bar."""
    wanted = appdata.default_models(app, pair) if wanted is None else wanted
    missing = appdata.missing_models(app, pair, label, wanted)
    if not missing:
        return False
    names = ", ".join(appdata.model_title(m) for m in missing)
    if st.button(f"Train missing models ({names})", key=key, type="primary"):
        bar = StreamlitProgress("starting")
        try:
            appdata.train_missing(app, pair, label, wanted, progress=bar)
        except Exception as exc:  # show the reason, keep the page usable
            bar.done()
            st.error(f"Training failed: {type(exc).__name__}: {exc}")
            return False
        bar.done()
        st.rerun()
    return False


# ---------------------------------------------------------------- shareable views (the URL)
# The URL holds the view (crossmodal_core.appdata.urlstate names and validates the parameters).
# A URL this session did not write (a page load, a pasted or shared link) is "pending" until the
# sidebar and the page it is for have taken their values; after that the widgets hold the state
# and every run writes it back. Each page's last parameters are kept in the session, so going to
# another page and back restores that page's view (the sidebar's choices are shared by all).
_URL_PENDING = "_url_pending"
_URL_WRITTEN = "_url_written"
_URL_LAST = "_url_last"
_URL_MODEL = "_url_model"  # the model chosen last, on whichever page
_URL_RUN = "_url_run"  # this run's (reader of the shared keys, slot above the page, its notices box)


def _url_start() -> urlstate.Reader:
    """Once per run, before the sidebar widgets: the reader of the sidebar's keys."""
    incoming = st.query_params.to_dict()
    if incoming != st.session_state.get(_URL_WRITTEN):
        st.session_state[_URL_PENDING] = dict(incoming)
    pending = st.session_state.get(_URL_PENDING) or {}
    reader = urlstate.Reader({k: pending.pop(k) for k in urlstate.SHARED_KEYS if k in pending})
    if len(pending) > urlstate.MAX_PARAMS:  # refuse a flood before any page reads it
        reader.notices += urlstate.Reader(pending).notices
        pending.clear()
    st.session_state[_URL_RUN] = (reader, st.empty(), None)
    return reader


def url_state(page: str) -> urlstate.Reader:
    """The reader of ``page``'s parameters: a link's values when one is pending, else the
    page's last view in this session (defaults for its widgets)."""
    pending = st.session_state.get(_URL_PENDING) or {}
    last = (st.session_state.get(_URL_LAST) or {}).get(page, {})
    # on a page's first visit, the model chosen on another page (retrieval <-> alignment) is the
    # default; after that the page's own last choice (a carried model the page lacks would
    # otherwise replace it by the page's default)
    carried = st.session_state.get(_URL_MODEL)
    reader = urlstate.Reader(pending, quiet={**({urlstate.MODEL_KEY: carried} if carried else {}), **last})
    st.session_state[f"_url_reader_{page}"] = reader
    return reader


def url_notices(page: str | None = None) -> None:
    """Show the refused values of the link so far (once), above the page's title."""
    run = st.session_state.get(_URL_RUN)
    readers = [run[0]] if run else []
    if page and st.session_state.get(f"_url_reader_{page}") is not None:
        readers.append(st.session_state[f"_url_reader_{page}"])
    notices = [n for r in readers for n in r.take_notices()]
    if notices and run:
        if run[2] is None:  # one container in the slot, made on the first notice (an empty slot shows nothing)
            run = st.session_state[_URL_RUN] = (run[0], run[1], run[1].container())
        for n in notices:
            run[2].warning(n, icon=":material/link_off:")


def _shared_params() -> dict[str, str]:
    params = {urlstate.DATASET_KEY: st.session_state.get(DATASET)}
    if st.session_state.get(LABEL) is not None:
        params[urlstate.LABEL_KEY] = st.session_state[LABEL]
    if st.session_state.get(PAIR):
        params[urlstate.PAIR_KEY] = urlstate.encode_pair(st.session_state[PAIR])
    return {k: str(v) for k, v in params.items() if v is not None}


def _write_url(params: dict[str, str]) -> None:
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    st.session_state[_URL_WRITTEN] = dict(params)


def share(page: str, params: dict[str, str | None]) -> None:
    """Write this view to the URL (the sidebar's choices plus ``page``'s ``params``; None
    values are left out), show the link's refused values and a "link to this view" box."""
    url_notices(page)
    page_params = {k: str(v) for k, v in params.items() if v is not None}
    full = {**_shared_params(), **page_params}
    st.session_state.setdefault(_URL_LAST, {})[page] = page_params
    if urlstate.MODEL_KEY in page_params:
        st.session_state[_URL_MODEL] = page_params[urlstate.MODEL_KEY]
    st.session_state[_URL_PENDING] = {}  # the link's values are taken: the widgets own them now
    _write_url(full)
    base = st.context.url
    with st.sidebar:
        st.caption("Link to this view (copy with the icon on the right)" if base else
                   "Link to this view: append this to the app's address (the browser did not send it)")
        st.code(urlstate.link(base, full), language=None, wrap_lines=True)


def _url_end_of_sidebar() -> None:
    """The sidebar's choices go to the URL at once (a page that stops early still keeps them)."""
    url_notices()
    current = st.query_params.to_dict()
    merged = {**current, **_shared_params()}
    _write_url(merged)
