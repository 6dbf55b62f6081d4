"""The in-memory dataset every layer above ``data`` works with.

A :class:`CrossModalDataset` holds ``n_items`` items, each seen through several named
views (``"audio"``, ``"visual"``, ``"sheet"``, ``"lyrics"``, ...). Row ``i`` of every view,
label array and metadata column describes the same item, so a same-row (audio, visual)
pair is a true pair for instance-level retrieval and a same-label pair is relevant for
class-level retrieval.

Shapes
------
- ``views[name]``: ``(n_items, d)`` float32 feature matrix, ``(n_items, T, d)`` for
  sequence views (e.g. time-pooled audio segments for the sequence models), or
  ``(n_items, C, H, W)`` for image views (score images, spectrograms for a 2-D CNN; the
  music dataset keeps them as uint8). A view may stay
  on disk (:class:`crossmodal_core.data.lazy.LazyArray`, from a Zarr or chunked HDF5 file):
  it has the same ``shape`` / ``dtype`` / indexing, ``subset`` keeps it on disk, and its rows
  are checked for NaN / inf when read instead of at construction.
- ``labels[name]``: ``(n_items,)`` int64 class index into ``class_names[name]``.
- ``metadata[name]``: ``(n_items,)`` array of str / numbers (title, lyrics, media paths).
- ``folds``: ``(n_items,)`` int64 fold id in ``0..k-1`` (or ``-1`` for "not in any fold"),
  or ``None``.
- ``split``: ``(n_items,)`` str array with ``"train"`` / ``"test"`` for datasets that ship
  a predefined split (the public VEGAS/AVE files), or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np


class DatasetError(ValueError):
    """A dataset (or the file it came from) is malformed; the message names the problem."""


def nonfinite_rows(arr: np.ndarray, block_bytes: int = 1 << 24) -> np.ndarray:
    """Sorted indices of the rows (axis 0) of ``arr`` holding NaN or inf.

    Scans blocks of rows of about ``block_bytes`` so no full-size mask is ever allocated;
    integer and bool arrays are finite by construction and are not scanned.
    """
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim == 0:
        return np.zeros(0 if np.isfinite(arr) else 1, dtype=np.int64)
    row_bytes = max(arr[:1].nbytes, 1)
    step = max(1, block_bytes // row_bytes)
    found = []
    for start in range(0, arr.shape[0], step):
        block = arr[start: start + step]
        ok = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        if not ok.all():
            found.append(np.nonzero(~ok)[0] + start)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _on_disk(arr: Any) -> bool:
    """A view read block by block (:class:`crossmodal_core.data.lazy.LazyArray`, dask array)."""
    return hasattr(arr, "iter_blocks") or type(arr).__module__.startswith("dask.")


def _rows(arr: np.ndarray) -> int:
    """Row count of an array; a 0-d array has 0 rows (``len`` would raise)."""
    return int(arr.shape[0]) if arr.ndim else 0


@dataclass
class CrossModalDataset:
    """Named views of the same items, with labels, ids and optional metadata.

    Parameters
    ----------
    views : mapping of view name -> array ``(n_items, d)`` or ``(n_items, T, d)``
    labels : mapping of label-set name -> int array ``(n_items,)``
    class_names : mapping of label-set name -> list of class names (index = label value)
    item_ids : str array ``(n_items,)``, unique
    metadata : mapping of column name -> array ``(n_items,)`` (str or numeric)
    folds : int array ``(n_items,)`` or None
    split : str array ``(n_items,)`` of "train"/"test", or None
    name : short identifier, used in artifact paths
    info : JSON-serialisable description (source, ``synthetic`` flag, default label, ...)
    """

    views: dict[str, np.ndarray]
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: dict[str, list[str]] = field(default_factory=dict)
    item_ids: np.ndarray | None = None
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    folds: np.ndarray | None = None
    split: np.ndarray | None = None
    name: str = "dataset"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # views that stay on disk are kept as they are (see crossmodal_core.data.lazy)
        self.views = {str(k): v if _on_disk(v) else np.asarray(v) for k, v in self.views.items()}
        self.labels = {str(k): np.asarray(v, dtype=np.int64) for k, v in self.labels.items()}
        self.class_names = {str(k): [str(c) for c in v] for k, v in self.class_names.items()}
        self.metadata = {str(k): np.asarray(v) for k, v in self.metadata.items()}
        if self.item_ids is None and self.views:
            n = _rows(next(iter(self.views.values())))
            self.item_ids = np.array([f"{self.name}-{i:06d}" for i in range(n)])
        if self.item_ids is not None:
            self.item_ids = np.asarray(self.item_ids).astype(str)
        if self.folds is not None:
            self.folds = np.asarray(self.folds, dtype=np.int64)
        if self.split is not None:
            self.split = np.asarray(self.split).astype(str)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self, source: str | None = None) -> "CrossModalDataset":
        """Check shapes, finiteness and label consistency; raise :class:`DatasetError`.

        ``source`` (a file path) is prefixed to every message so the user knows which
        file is broken.
        """
        where = f"{source}: " if source else f"dataset {self.name!r}: "
        if not self.views:
            raise DatasetError(where + "no views")
        for vname, arr in self.views.items():
            if arr.ndim not in (2, 3, 4):
                raise DatasetError(where + f"view {vname!r} must be 2-D (n, d), 3-D (n, T, d) or 4-D (n, C, H, W), "
                                   f"got shape {arr.shape}")
        n = self.n_items
        for vname, arr in self.views.items():
            if arr.shape[0] != n:
                raise DatasetError(
                    where + f"view {vname!r} has {arr.shape[0]} rows but view "
                    f"{self.view_names[0]!r} has {n}: rows must describe the same items"
                )
            if not np.issubdtype(arr.dtype, np.number):
                raise DatasetError(where + f"view {vname!r} is not numeric (dtype {arr.dtype})")
            # an on-disk view is checked for NaN / inf block by block as it is read
            rows = np.zeros(0, dtype=np.int64) if _on_disk(arr) else nonfinite_rows(arr)
            if len(rows):
                raise DatasetError(
                    where + f"view {vname!r} contains NaN or inf in {len(rows)} row(s), "
                    f"first at row {int(rows[0])}"
                )
        for lname, lab in self.labels.items():
            if lab.shape != (n,):
                raise DatasetError(where + f"labels {lname!r} have shape {lab.shape}, expected ({n},)")
            names = self.class_names.get(lname)
            if names is None:
                raise DatasetError(where + f"labels {lname!r} have no class_names")
            if n and (lab.min() < 0 or lab.max() >= len(names)):
                raise DatasetError(
                    where + f"labels {lname!r} hold values outside 0..{len(names) - 1}"
                )
            counts = np.bincount(lab, minlength=len(names))
            empty = [names[i] for i in np.nonzero(counts == 0)[0]]
            if empty and n:
                raise DatasetError(
                    where + f"labels {lname!r}: class(es) with no item: {empty[:5]}"
                    + (" ..." if len(empty) > 5 else "")
                )
        for cname, col in self.metadata.items():
            if _rows(col) != n:
                raise DatasetError(where + f"metadata column {cname!r} has {_rows(col)} rows, expected {n}")
        if self.item_ids is not None:
            if _rows(self.item_ids) != n:
                raise DatasetError(where + f"item_ids has {_rows(self.item_ids)} rows, expected {n}")
            if len(np.unique(self.item_ids)) != n:
                raise DatasetError(where + "item_ids are not unique")
        if self.folds is not None and self.folds.shape != (n,):
            raise DatasetError(where + f"folds have shape {self.folds.shape}, expected ({n},)")
        if self.split is not None:
            if self.split.shape != (n,):
                raise DatasetError(where + f"split has shape {self.split.shape}, expected ({n},)")
            odd = set(np.unique(self.split)) - {"train", "test"}
            if odd:
                raise DatasetError(where + f"split holds values other than train/test: {sorted(odd)}")
        return self

    # ------------------------------------------------------------------ accessors
    @property
    def n_items(self) -> int:
        return int(next(iter(self.views.values())).shape[0])

    @property
    def view_names(self) -> list[str]:
        return list(self.views)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    @property
    def default_label(self) -> str | None:
        """The label set that defines relevance unless the caller picks another."""
        name = self.info.get("default_label")
        if name in self.labels:
            return name
        return next(iter(self.labels), None)

    @property
    def is_synthetic(self) -> bool:
        return bool(self.info.get("synthetic", False))

    def view(self, name: str) -> np.ndarray:
        try:
            return self.views[name]
        except KeyError:
            raise KeyError(f"dataset {self.name!r} has no view {name!r}; views: {self.view_names}") from None

    def label(self, name: str | None = None) -> np.ndarray:
        name = name or self.default_label
        if name not in self.labels:
            raise KeyError(f"dataset {self.name!r} has no label set {name!r}; label sets: {self.label_names}")
        return self.labels[name]

    def __len__(self) -> int:
        return self.n_items

    # ------------------------------------------------------------------ subsetting
    def subset(self, index: np.ndarray | Sequence[int], name: str | None = None) -> "CrossModalDataset":
        """Rows ``index`` (int indices or a boolean mask) as a new dataset.

        Class names are kept whole, so label values mean the same thing in every subset
        (a subset may therefore lack some classes; it is not re-validated for empty
        classes).
        """
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        out = object.__new__(CrossModalDataset)
        out.views = {k: v[idx] for k, v in self.views.items()}
        out.labels = {k: v[idx] for k, v in self.labels.items()}
        out.class_names = {k: list(v) for k, v in self.class_names.items()}
        out.item_ids = None if self.item_ids is None else self.item_ids[idx]
        out.metadata = {k: v[idx] for k, v in self.metadata.items()}
        out.folds = None if self.folds is None else self.folds[idx]
        out.split = None if self.split is None else self.split[idx]
        out.name = name or self.name
        out.info = dict(self.info)
        return out

    def pair_views(self, names: Sequence[str]) -> list[np.ndarray]:
        """The listed views as a list, in that order (the ``views`` argument of a model)."""
        return [self.view(n) for n in names]

    def summary(self) -> dict[str, Any]:
        """Counts and shapes for display (JSON-serialisable)."""
        return {
            "name": self.name,
            "n_items": self.n_items,
            "views": {k: list(v.shape[1:]) for k, v in self.views.items()},
            "labels": {k: len(self.class_names[k]) for k in self.labels},
            "metadata": list(self.metadata),
            "folds": None if self.folds is None else int(self.folds.max() + 1),
            "split": None if self.split is None else {s: int((self.split == s).sum()) for s in ("train", "test")},
            "synthetic": self.is_synthetic,
        }


def check_views(views: Sequence[np.ndarray] | Mapping[str, np.ndarray], n_views: int | None = None,
                min_rows: int = 2, what: str = "views") -> list[np.ndarray]:
    """Validate the ``views`` argument of an estimator: same rows, 2-D, finite, float.

    Returns the views as a list of C-contiguous float arrays (float32 stays float32).
    """
    if isinstance(views, Mapping):
        views = list(views.values())
    if isinstance(views, np.ndarray):
        raise ValueError(f"{what} must be a list of arrays (one per modality), got a single array")
    views = list(views)
    if n_views is not None and len(views) != n_views:
        raise ValueError(f"expected {n_views} {what}, got {len(views)}")
    out = []
    for i, v in enumerate(views):
        a = np.asarray(v)
        if a.ndim == 3:
            raise ValueError(f"{what}[{i}] is a sequence view {a.shape} (n, T, d); this model takes 2-D "
                             "(n_samples, n_features) views: pass its time average or use a sequence model")
        if a.ndim == 4:
            raise ValueError(f"{what}[{i}] is an image view {a.shape} (n, C, H, W); this model takes 2-D "
                             "(n_samples, n_features) views: use a model with a CNN tower, or flat features")
        if a.ndim != 2:
            raise ValueError(f"{what}[{i}] must be 2-D (n_samples, n_features), got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{what}[{i}] contains NaN or inf")
        out.append(np.ascontiguousarray(a))
    n = out[0].shape[0]
    for i, a in enumerate(out):
        if a.shape[0] != n:
            raise ValueError(f"{what}[{i}] has {a.shape[0]} rows but {what}[0] has {n}")
    if n < min_rows:
        raise ValueError(f"{what} need at least {min_rows} rows, got {n}")
    return out
