"""Deep cross-modal models (PyTorch): DCCA, ClusterDCCA, TNNClusterCCA, ContrastiveAligner, UGAAR.

Small pieces underneath, pytorch-metric-learning style: :mod:`.towers` (MLP builders),
:mod:`.losses`, :mod:`.miners`, :mod:`.distances`, and :mod:`.training` (the seeded,
early-stopping, divergence-checking loop every model shares); :mod:`._base` holds the estimator
base class with atomic ``save`` / ``load``.
"""

from crossmodal_core.models.deep._base import CheckpointError, TorchCrossModalEstimator
from crossmodal_core.models.deep.training import TrainingDivergedError, fit_loop, resolve_device, seeded
from crossmodal_core.models.deep.towers import make_tower

__all__ = [
    "CheckpointError",
    "TorchCrossModalEstimator",
    "TrainingDivergedError",
    "fit_loop",
    "make_tower",
    "resolve_device",
    "seeded",
]
