"""The public VEGAS / AVE / UnsupervisedMAE feature-file layouts (``load_vegas_layout``).

The feature files distributed with the VEGAS / AVE cross-modal retrieval papers are
HDF5 (or NPZ) files with one array per modality and split plus label arrays. Accepted
keys (case-insensitive; ``<m>`` is ``audio`` or ``visual``, ``<s>`` is ``train`` or
``test``):

- features: ``<m>_<s>`` or ``<s>_<m>``; ``visual`` may also be spelled ``video``,
  ``image`` or ``img`` (``visual_train``, ``train_video``, ...). A ``val`` split
  (``audio_val``...) is merged into train and marked in the ``source_split`` column.
- shared labels: ``<s>_labels``, ``<s>_label``, ``<s>_lab``, ``lab_<s>``, ``label_<s>``,
  ``labels_<s>``, ``y_<s>``;
- or per-modality labels: ``<m>_<s>_labels``, ``<s>_<m>_labels``, ``lab_<s>_<m>``,
  ``label_<s>_<m>``, ``<m>_<s>_label``, ``<s>_<m>_label``; the two modalities' labels must
  be equal row by row (rows are paired clips);
- optional ``class_names`` / ``classes`` (str), and ``<s>_ids`` / ``ids_<s>`` (str).
- or one table for both splits (the layout of ``UnsupervisedMAE``'s ``data_loader.py``):
  ``audio_feat``, ``visual_feat``, ``Label_ID`` and ``Train_test`` or ``Split`` holding
  ``1`` (train) / ``0`` (test) per row (numbers or text; ``"train"`` / ``"test"`` too);
  item ids are then ``row-<i>``, the row in the file.

Labels are integer class indices ``(n,)`` / ``(n, 1)`` (``0..C-1``; if ``0`` never occurs
and no class names are given they are read as 1-based) or one-hot ``(n, C)`` rows of 0/1
summing to 1. Features ``(n, d)`` become the views ``"audio"`` / ``"visual"``; sequence
features ``(n, T, d)`` (e.g. 10 one-second segments) are kept as ``"audio_seq"`` /
``"visual_seq"`` and their time average becomes the main view, as in the papers. The
result has the label set ``"class"``, ``split`` = train/test and ``info["source"]`` =
the file.

Every array is read through :func:`crossmodal_core.data.readers.read_arrays` (each file is
untrusted; the checks are listed there). Every problem raises
:class:`~crossmodal_core.data.dataset.DatasetError` whose message starts with the file path
and names the key. :func:`crossmodal_core.data.io.load_dataset` reads a file without our
format marker with this layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from crossmodal_core.data.dataset import CrossModalDataset, DatasetError, nonfinite_rows
from crossmodal_core.data.readers import read_arrays

__all__ = ["load_vegas_layout", "convert_to_zarr"]


# ---------------------------------------------------------------------- key aliases
_MODALITY_ALIASES = {"audio": ("audio",), "visual": ("visual", "video", "image", "img")}
_SPLITS = ("train", "val", "test")


def _find_key(lower_to_key: dict[str, str], candidates: list[str]) -> str | None:
    for cand in candidates:
        if cand in lower_to_key:
            return lower_to_key[cand]
    return None


def _feature_key(lower_to_key: dict[str, str], modality: str, split: str) -> str | None:
    cands = []
    for alias in _MODALITY_ALIASES[modality]:
        cands += [f"{alias}_{split}", f"{split}_{alias}"]
    return _find_key(lower_to_key, cands)


def _label_keys(lower_to_key: dict[str, str], split: str) -> dict[str, str] | None:
    """``{"shared": key}`` or ``{"audio": key, "visual": key}`` or None."""
    shared = _find_key(lower_to_key, [
        f"{split}_labels", f"{split}_label", f"{split}_lab", f"lab_{split}",
        f"label_{split}", f"labels_{split}", f"y_{split}",
    ])
    if shared is not None:
        return {"shared": shared}
    per = {}
    for modality, aliases in _MODALITY_ALIASES.items():
        cands = []
        for a in aliases:
            cands += [f"{a}_{split}_labels", f"{split}_{a}_labels", f"lab_{split}_{a}",
                      f"label_{split}_{a}", f"{a}_{split}_label", f"{split}_{a}_label",
                      f"{a}_{split}_lab", f"{split}_{a}_lab", f"labels_{split}_{a}"]
        key = _find_key(lower_to_key, cands)
        if key is not None:
            per[modality] = key
    if len(per) == 2:
        return per
    if len(per) == 1:  # one modality's labels describe the paired rows of both
        return {"shared": next(iter(per.values()))}
    return None


def _decode_labels(raw: np.ndarray, key: str, path: Path) -> tuple[np.ndarray, int | None, bool]:
    """Integer class codes from integer or one-hot labels: (codes, n_columns or None, onehot)."""
    lab = np.asarray(raw)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim == 2:
        if not np.issubdtype(lab.dtype, np.number) or not np.isfinite(lab).all():
            raise DatasetError(f"{path}: one-hot labels {key!r} must be finite numbers")
        binary = np.isin(lab, (0, 1)).all()
        sums = lab.sum(axis=1)
        bad = np.nonzero(~np.isclose(sums, 1.0))[0]
        if not binary or len(bad):
            first = int(bad[0]) if len(bad) else int(np.nonzero(~np.isin(lab, (0, 1)).all(axis=1))[0][0])
            raise DatasetError(
                f"{path}: one-hot labels {key!r} must hold 0/1 rows summing to 1; "
                f"{max(len(bad), 1)} row(s) do not, first at row {first} (sum {float(sums[first]):g})"
            )
        return lab.argmax(axis=1).astype(np.int64), lab.shape[1], True
    if lab.ndim != 1:
        raise DatasetError(f"{path}: labels {key!r} must be (n,) integers or (n, C) one-hot, got shape {lab.shape}")
    if lab.dtype.kind == "f":
        if not np.isfinite(lab).all() or not np.all(lab == np.round(lab)):
            raise DatasetError(f"{path}: labels {key!r} must be whole numbers, found non-integer or NaN values")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iub":
        raise DatasetError(f"{path}: labels {key!r} must be integer class indices or one-hot rows, got dtype {lab.dtype}")
    if len(lab) and lab.min() < 0:
        raise DatasetError(f"{path}: labels {key!r} hold negative class indices")
    if len(lab) and lab.max() >= 2**62:  # would wrap (uint64) or overflow (float) as int64
        raise DatasetError(f"{path}: labels {key!r} hold the class index {lab.max()}, far beyond any class count")
    return lab.astype(np.int64), None, False


def load_vegas_layout(path: str | Path, name: str | None = None) -> CrossModalDataset:
    """Load a VEGAS/AVE-style feature file (HDF5 or NPZ; layout in the module docstring).

    Returns a dataset with views ``"audio"`` and ``"visual"`` (plus ``"audio_seq"`` /
    ``"visual_seq"`` when the file holds ``(n, T, d)`` sequences), label set ``"class"``
    and ``split`` train/test (train rows first).
    """
    path = Path(path)
    arrays, _ = read_arrays(path)
    return _vegas_from_arrays(arrays, path, name=name)


def _vegas_from_arrays(arrays: dict[str, np.ndarray], path: Path, name: str | None = None) -> CrossModalDataset:
    """The VEGAS/AVE layout read from ``arrays`` (feature arrays are popped as they are used)."""
    lower_to_key = {k.lower(): k for k in arrays}
    if _is_one_table(lower_to_key):
        arrays = _split_combined_layout(arrays, lower_to_key, path)
        lower_to_key = {k.lower(): k for k in arrays}
    parts = _vegas_split_keys(arrays, lower_to_key, path)
    codes, class_names, onehot_any = _vegas_codes(arrays, lower_to_key, parts, path)
    return _vegas_assemble(arrays, lower_to_key, parts, codes, class_names, onehot_any, path, name)


_COMBINED_KEYS = {"audio_feat", "visual_feat", "label_id"}


def _is_one_table(lower_to_key: dict[str, str]) -> bool:
    """The one-table layout (``audio_feat`` / ``visual_feat`` / ``Label_ID``), not per-split arrays."""
    return _COMBINED_KEYS <= set(lower_to_key) and not _feature_key(lower_to_key, "audio", "train")
_TRAIN_VALUES, _TEST_VALUES = ("1", "train"), ("0", "test")


def _split_combined_layout(arrays: dict[str, np.ndarray], lower_to_key: dict[str, str],
                           path: Path) -> dict[str, np.ndarray]:
    """The one-table layout (``audio_feat``, ``visual_feat``, ``Label_ID``, ``Train_test`` or
    ``Split`` with "1" = train, "0" = test) as per-split arrays with ids ``row-<i>`` (file row).

    The feature tables are popped from ``arrays`` as they are split, so each is held once.
    """
    split_key = _find_key(lower_to_key, ["train_test", "split"])
    if split_key is None:
        keys = sorted(arrays)[:30]
        raise DatasetError(
            f"{path}: 'audio_feat' / 'visual_feat' / 'Label_ID' need a 'Train_test' or 'Split' array "
            f"(1 = train, 0 = test); the file holds the keys {keys}"
        )
    raw = np.asarray(arrays[split_key]).reshape(-1)
    if raw.dtype.kind in "biuf":
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raise DatasetError(f"{path}: {split_key!r} holds NaN or inf")
        text = np.where(raw == 1, "1", np.where(raw == 0, "0", "other"))
    else:
        text = np.char.lower(np.char.strip(raw.astype(str)))
    train = np.isin(text, _TRAIN_VALUES)
    test = np.isin(text, _TEST_VALUES)
    odd = ~(train | test)
    if odd.any():
        shown = sorted({str(v) for v in raw[odd][:1000].tolist()})[:10]
        raise DatasetError(
            f"{path}: {split_key!r} must hold 1 (train) or 0 (test) per row; {int(odd.sum())} row(s) hold "
            f"other values, e.g. {shown}"
        )
    n = len(raw)
    # checked under the file's own key names and rows, before they are split and renamed
    _vegas_check_features(arrays, {"audio": lower_to_key["audio_feat"], "visual": lower_to_key["visual_feat"]}, path)
    out: dict[str, np.ndarray] = {}
    for name, key in (("audio", lower_to_key["audio_feat"]), ("visual", lower_to_key["visual_feat"]),
                      ("labels", lower_to_key["label_id"])):
        arr = np.asarray(arrays.pop(key))
        if name == "labels" and arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 0 or len(arr) != n:
            raise DatasetError(f"{path}: {key!r} has {0 if arr.ndim == 0 else len(arr)} rows but {split_key!r} has {n}")
        out[f"{name}_train"], out[f"{name}_test"] = arr[train], arr[test]
        del arr
    rows = np.arange(n)
    out["train_ids"] = np.array([f"row-{i:06d}" for i in rows[train]])
    out["test_ids"] = np.array([f"row-{i:06d}" for i in rows[test]])
    names_key = _find_key(lower_to_key, ["class_names", "classes", "label_names", "categories"])
    if names_key is not None:
        out[names_key] = arrays[names_key]
    return out


def _vegas_split_keys(arrays: Mapping[str, np.ndarray], lower_to_key: dict[str, str],
                      path: Path) -> dict[str, dict[str, Any]]:
    """``split -> {"audio": key, "visual": key, "labels": {...}}`` for train, (val,) test."""
    present = sorted(arrays)

    def missing(what: str) -> DatasetError:
        shown = present[:30] + (["..."] if len(present) > 30 else [])
        return DatasetError(
            f"{path}: not a crossmodal dataset and not the VEGAS/AVE layout: {what}; "
            f"the file holds the keys {shown}"
        )

    parts: dict[str, dict[str, Any]] = {}
    for split in _SPLITS:
        a_key = _feature_key(lower_to_key, "audio", split)
        v_key = _feature_key(lower_to_key, "visual", split)
        if split == "val" and a_key is None and v_key is None:
            continue
        if a_key is None or v_key is None:
            which = "audio" if a_key is None else "visual"
            raise missing(f"no {which} features for the {split} split (e.g. '{which}_{split}')")
        lab_keys = _label_keys(lower_to_key, split)
        if lab_keys is None:
            raise missing(f"no labels for the {split} split (e.g. '{split}_labels' or 'lab_{split}')")
        parts[split] = {"audio": a_key, "visual": v_key, "labels": lab_keys}
    return parts


def _vegas_check_features(arrays: Mapping[str, Any], keys: Mapping[str, Any], path: Path,
                          values: bool = True) -> int:
    """Check one split's audio / visual arrays (2-D or 3-D, numeric, paired, and finite when
    ``values``); return the rows. ``values=False`` reads nothing (arrays on disk, whose NaN /
    inf are checked block by block as they are copied)."""
    audio, visual = arrays[keys["audio"]], arrays[keys["visual"]]
    for key, arr in ((keys["audio"], audio), (keys["visual"], visual)):
        if len(arr.shape) not in (2, 3):
            raise DatasetError(f"{path}: {key!r} must be (n, d) or (n, T, d), got shape {tuple(arr.shape)}")
        if not np.issubdtype(arr.dtype, np.number):
            raise DatasetError(f"{path}: {key!r} is not numeric (dtype {arr.dtype})")
        rows = nonfinite_rows(np.asarray(arr)) if values else ()
        if len(rows):
            raise DatasetError(f"{path}: {key!r} contains NaN or inf in {len(rows)} row(s), first at row {int(rows[0])}")
    if audio.shape[0] != visual.shape[0]:
        raise DatasetError(
            f"{path}: {keys['audio']!r} has {audio.shape[0]} rows but {keys['visual']!r} has "
            f"{visual.shape[0]}: audio and visual rows must be paired clips"
        )
    return int(audio.shape[0])


def _vegas_split_labels(arrays: Mapping[str, np.ndarray], keys: Mapping[str, Any], split: str, n_rows: int,
                        path: Path) -> tuple[np.ndarray, set[int], bool]:
    """One split's class codes (shared, or per modality and equal row by row), one-hot widths, one-hot?"""
    labs: dict[str, np.ndarray] = {}
    n_columns: set[int] = set()
    onehot_any = False
    for which, key in keys["labels"].items():
        codes, ncol, onehot = _decode_labels(arrays[key], key, path)
        onehot_any |= onehot
        if ncol is not None:
            n_columns.add(ncol)
        if len(codes) != n_rows:
            raise DatasetError(f"{path}: labels {key!r} have {len(codes)} rows but {keys['audio']!r} has {n_rows}")
        labs[which] = codes
    if "shared" in labs:
        return labs["shared"], n_columns, onehot_any
    diff = np.nonzero(labs["audio"] != labs["visual"])[0]
    if len(diff):
        raise DatasetError(
            f"{path}: audio and visual labels of the {split} split differ in {len(diff)} row(s), "
            f"first at row {int(diff[0])}: rows must be paired clips of the same class"
        )
    return labs["audio"], n_columns, onehot_any


def _vegas_codes(arrays: Mapping[str, Any], lower_to_key: dict[str, str], parts: dict[str, dict[str, Any]],
                 path: Path, values: bool = True) -> tuple[dict[str, np.ndarray], list[str], bool]:
    """Every split's features checked (:func:`_vegas_check_features`) and labels decoded:
    ``(codes per split, class names, whether any labels were one-hot)``."""
    codes: dict[str, np.ndarray] = {}
    n_columns: set[int] = set()
    onehot_any = False
    for split, keys in parts.items():
        n_rows = _vegas_check_features(arrays, keys, path, values=values)
        codes[split], ncols, onehot = _vegas_split_labels(arrays, keys, split, n_rows, path)
        n_columns |= ncols
        onehot_any |= onehot
    codes, class_names = _vegas_resolve_classes(codes, n_columns, arrays, lower_to_key, path)
    return codes, class_names, onehot_any


def _vegas_resolve_classes(codes: dict[str, np.ndarray], n_columns: set[int], arrays: Mapping[str, np.ndarray],
                           lower_to_key: dict[str, str], path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Class names (from the file, or ``class_<i>``), 1-based codes made 0-based, every class used.

    The number of classes comes from the one-hot width, else the class names, else the
    largest code; with no names and no 0 code the codes are read as 1-based.
    """
    if len(n_columns) > 1:
        raise DatasetError(f"{path}: one-hot label arrays disagree on the number of classes: {sorted(n_columns)}")
    all_codes = np.concatenate(list(codes.values()))
    names_key = _find_key(lower_to_key, ["class_names", "classes", "label_names", "categories"])
    class_names = None
    if names_key is not None:
        class_names = [str(c) for c in np.asarray(arrays[names_key]).reshape(-1).tolist()]
    if n_columns:
        n_classes = next(iter(n_columns))
    elif class_names is not None:
        n_classes = len(class_names)
    else:
        if len(all_codes) and all_codes.min() == 1:  # 1-based class numbers (MATLAB-style files)
            codes = {s: c - 1 for s, c in codes.items()}
            all_codes = all_codes - 1
        top = int(all_codes.max()) if len(all_codes) else -1
        if top >= len(all_codes):  # more classes than items: some class is empty (and names would not fit)
            raise DatasetError(
                f"{path}: labels hold class index {top} but there are only {len(all_codes)} items, "
                "so some classes have no item"
            )
        n_classes = top + 1
    if class_names is None:
        class_names = [f"class_{i}" for i in range(n_classes)]
    if len(class_names) != n_classes:
        raise DatasetError(f"{path}: {names_key!r} names {len(class_names)} classes but the labels have {n_classes}")
    if len(all_codes) and all_codes.max() >= n_classes:
        raise DatasetError(f"{path}: labels hold class index {int(all_codes.max())} but there are only {n_classes} classes")
    counts = np.bincount(all_codes, minlength=n_classes)
    empty = [class_names[i] for i in np.nonzero(counts == 0)[0]]
    if empty:
        raise DatasetError(
            f"{path}: {len(empty)} class(es) have no item in any split: {empty[:10]}"
            + (" ..." if len(empty) > 10 else "")
        )
    return codes, class_names


def _vegas_item_ids(arrays: Mapping[str, np.ndarray], lower_to_key: dict[str, str], split: str, n_rows: int,
                    path: Path) -> np.ndarray:
    id_key = _find_key(lower_to_key, [f"{split}_ids", f"ids_{split}", f"{split}_id", f"id_{split}"])
    if id_key is None:
        return np.array([f"{split}-{i:06d}" for i in range(n_rows)])
    ids = np.asarray(arrays[id_key]).astype(str).reshape(-1)
    if len(ids) != n_rows:
        raise DatasetError(f"{path}: {id_key!r} has {len(ids)} rows but the {split} features have {n_rows}")
    return ids


def _view_dtype(dtypes: list[Any]) -> np.dtype:
    """The joined view's dtype: the splits' common type, float32 for non-float input."""
    dtype = np.result_type(*dtypes)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


def _join_in_memory(chunks: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """One modality's splits concatenated in one copy, and the time average of a sequence view."""
    chunks = [np.asarray(c) for c in chunks]
    arr = np.concatenate(chunks, axis=0, dtype=_view_dtype(chunks))
    return arr, (arr.mean(axis=1, dtype=np.float64).astype(arr.dtype) if arr.ndim == 3 else None)


def _join_on_disk(chunks: list[Any]) -> tuple[Any, Any]:
    """As :func:`_join_in_memory` for arrays on disk: row-concatenated and averaged lazily."""
    from crossmodal_core.data.lazy import RowConcat, RowMean

    whole = RowConcat(chunks, _view_dtype([c.dtype for c in chunks]))
    return whole, (RowMean(whole) if whole.ndim == 3 else None)


def _vegas_assemble(arrays: dict[str, Any], lower_to_key: dict[str, str], parts: dict[str, dict[str, Any]],
                    codes: dict[str, np.ndarray], class_names: list[str], onehot_any: bool, path: Path,
                    name: str | None, join: Any = _join_in_memory) -> CrossModalDataset:
    """Train (+val) rows first, then test; views, ids, split and ``source_split`` columns.

    ``join(chunks) -> (view, time average or None)`` joins one modality's split arrays:
    :func:`_join_in_memory`, or :func:`_join_on_disk` for the Zarr conversion.
    """
    order = [s for s in ("train", "val", "test") if s in parts]
    split_col, source_split, ids = [], [], []
    for s in order:
        n_rows = len(codes[s])
        split_col += ["test" if s == "test" else "train"] * n_rows
        source_split += [s] * n_rows
        ids.append(_vegas_item_ids(arrays, lower_to_key, s, n_rows, path))
    views: dict[str, np.ndarray] = {}
    for modality in ("audio", "visual"):
        keys = [parts[s][modality] for s in order]
        shapes = {tuple(arrays[k].shape[1:]) for k in keys}
        if len(shapes) > 1:
            raise DatasetError(f"{path}: {modality} features have different shapes across splits: {sorted(shapes)}")
        arr, time_mean = join([arrays[k] for k in keys])
        for k in keys:  # the file's copy is no longer needed once concatenated
            arrays.pop(k, None)
        if time_mean is not None:
            views[modality] = time_mean
            views[f"{modality}_seq"] = arr
        else:
            views[modality] = arr
    # Put the 2-D views first so "the first two views" are audio, visual.
    views = {k: views[k] for k in sorted(views, key=lambda k: (k.endswith("_seq"), k != "audio"))}
    item_ids = np.concatenate(ids)
    if len(np.unique(item_ids)) != len(item_ids):
        item_ids = np.array([f"{s}-{i}" for s, i in zip(source_split, item_ids)])
    metadata = {"source_split": np.array(source_split)} if "val" in parts else {}
    info = {
        "source": str(path),
        "layout": "vegas",
        "synthetic": False,
        "default_label": "class",
        "labels_were_onehot": bool(onehot_any),
        "description": f"audio-visual features read from {path.name} (VEGAS/AVE layout)",
    }
    try:
        return CrossModalDataset(
            views=views,
            labels={"class": np.concatenate([codes[s] for s in order])},
            class_names={"class": class_names},
            item_ids=item_ids,
            metadata=metadata,
            split=np.array(split_col),
            name=name or path.stem,
            info=info,
        )
    except DatasetError as exc:
        raise DatasetError(f"{path}: {str(exc).split(': ', 1)[-1]}") from None


# ---------------------------------------------------------------------- streaming conversion
def convert_to_zarr(src: str | Path, out: str | Path, chunk_bytes: int = 16 << 20,
                    progress: bool = False) -> Path:
    """Convert a dataset file (our NPZ / HDF5 format, the VEGAS / AVE layout, or Zarr) into a
    chunked Zarr folder :func:`~crossmodal_core.data.io.load_dataset` opens with its views on disk.

    HDF5 inputs stream: the feature arrays are checked in the isolated reader and copied row
    block by row block into row chunks of about ``chunk_bytes``, the splits of the VEGAS layout
    written one after the other and a sequence view's time average computed block by block, so
    memory stays at a few blocks whatever the size. The result equals ``load_dataset(src)``
    row for row. NPZ files and the one-table ``UnsupervisedMAE`` layout are read whole first
    (NPZ cannot be read in parts). Returns ``out``; writes atomically.
    """
    from crossmodal_core.data import io as data_io
    from crossmodal_core.data.lazy import is_zarr_path, open_hdf5_arrays
    from crossmodal_core.data.readers import _suffix_kind

    src, out = Path(src), Path(out)
    if not is_zarr_path(out):
        raise DatasetError(f"{out}: the converted dataset is a Zarr folder; name it <something>.zarr")
    if src.exists() and out.exists() and src.resolve() == out.resolve():
        raise DatasetError(f"{out}: is the input itself")
    if is_zarr_path(src) or _suffix_kind(src) == "npz":
        return data_io.save_zarr(data_io.load_dataset(src, lazy="auto"), out, chunk_bytes, progress=progress)
    if not src.is_file():
        raise DatasetError(f"{src}: no such file")
    arrays, attrs = open_hdf5_arrays(
        src, lambda key, dset: dset.shape is not None and len(dset.shape) >= 2 and dset.dtype.kind == "f")
    if attrs.get("format") is not None:  # our own format (or another marker, which load_dataset names)
        return data_io.save_zarr(data_io.load_dataset(src, lazy=True), out, chunk_bytes, progress=progress)
    lower_to_key = {k.lower(): k for k in arrays}
    if _is_one_table(lower_to_key):
        return data_io.save_zarr(data_io.load_dataset(src, lazy=False), out, chunk_bytes, progress=progress)
    parts = _vegas_split_keys(arrays, lower_to_key, src)
    codes, class_names, onehot_any = _vegas_codes(arrays, lower_to_key, parts, src, values=False)
    ds = _vegas_assemble(arrays, lower_to_key, parts, codes, class_names, onehot_any, src, None, join=_join_on_disk)
    return data_io.save_zarr(ds, out, chunk_bytes, progress=progress)
