"""Datasets: the :class:`CrossModalDataset` container, file formats, splits, synthetic data.

- :mod:`.dataset` -- the container and its validation (:class:`DatasetError`).
- :mod:`.io` -- our NPZ / HDF5 format (:func:`save_dataset` / :func:`load_dataset`, which
  falls back to the VEGAS/AVE layout for files without our format marker).
- :mod:`.vegas` -- the public VEGAS / AVE / UnsupervisedMAE feature-file layouts, and the
  streaming converter to chunked Zarr (:func:`~.vegas.convert_to_zarr`).
- :mod:`.lazy` -- views that stay on disk (:class:`~.lazy.LazyArray` over Zarr / chunked HDF5).
- :mod:`.readers` -- the hostile-file-safe NPZ / HDF5 array readers (memory budget, no
  pickles, no links to other files, HDF5 parsed in a forked child).
- :mod:`.splits` -- class-balanced k-fold, group (by work) folds, zero-shot seen/unseen split.
- :mod:`.synthetic` -- a seeded, clearly labelled synthetic audio-visual generator.
- :mod:`.music` -- the music21-corpus sheet/lyrics/audio dataset (imported on demand).

Nothing here imports torch.
"""

from crossmodal_core.data.dataset import CrossModalDataset, DatasetError, check_views
from crossmodal_core.data.io import load_dataset, save_dataset
from crossmodal_core.data.splits import (
    ZeroShotSplit,
    class_balanced_folds,
    fold_indices,
    group_folds,
    iter_folds,
    zero_shot_split,
)
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.data.vegas import load_vegas_layout

__all__ = [
    "CrossModalDataset",
    "DatasetError",
    "check_views",
    "load_dataset",
    "load_vegas_layout",
    "save_dataset",
    "ZeroShotSplit",
    "class_balanced_folds",
    "fold_indices",
    "group_folds",
    "iter_folds",
    "zero_shot_split",
    "make_synthetic_av",
]
