"""Cross-modal embedding models, all following :class:`~crossmodal_core.models.base.CrossModalEstimator`.

Linear family (numpy/scipy/scikit-learn only): :class:`CCA`, :class:`KCCA`,
:class:`ClusterCCA`, :class:`ClusterKCCA`, :func:`select_regularization`.
Deep models (torch) live in :mod:`crossmodal_core.models.deep` and are imported from there,
so that importing this package never imports torch.
"""

from crossmodal_core.models.base import CrossModalEstimator
from crossmodal_core.models.linear import (
    CCA,
    KCCA,
    ClusterCCA,
    ClusterKCCA,
    select_regularization,
)

__all__ = ["CrossModalEstimator", "CCA", "KCCA", "ClusterCCA", "ClusterKCCA", "select_regularization"]
