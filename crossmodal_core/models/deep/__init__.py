"""Deep cross-modal models (PyTorch): DCCA, ClusterDCCA, TNNClusterCCA, ContrastiveAligner, UGAAR,
ACMR, UCAL, UGACH, AGAH, SupervisedDCCA (S-DCCA) and CrossModalVAE,
and the sequence models LSTMClusterCCA, ChunkAttentionCCA, CrossModalTransformer.

Small pieces underneath, pytorch-metric-learning style: :mod:`.towers` (MLP builders),
:mod:`.losses`, :mod:`.miners`, :mod:`.distances`, and :mod:`.training` (the seeded,
early-stopping, divergence-checking loop every model shares); :mod:`._base` holds the estimator
base class with atomic ``save`` / ``load`` (``TorchCrossModalEstimator.load(path)`` returns
whichever model class the checkpoint holds).
"""

from crossmodal_core.models.deep._base import CheckpointError, TorchCrossModalEstimator
from crossmodal_core.models.deep.acmr import ACMR
from crossmodal_core.models.deep.contrastive import ContrastiveAligner
from crossmodal_core.models.deep.dcca import DCCA, ClusterDCCA
from crossmodal_core.models.deep.hashing import AGAH, UGACH
from crossmodal_core.models.deep.sdcca import SupervisedDCCA
from crossmodal_core.models.deep.tnn import TNNClusterCCA
from crossmodal_core.models.deep.towers import make_tower
from crossmodal_core.models.deep.training import TrainingDivergedError, fit_loop, resolve_device, seeded
from crossmodal_core.models.deep.ucal import UCAL
from crossmodal_core.models.deep.ugaar import UGAAR
from crossmodal_core.models.deep.vae import CrossModalVAE

# sequence models (views (n, T, d); see .sequence)
from crossmodal_core.models.deep.attention import ChunkAttentionCCA  # noqa: E402
from crossmodal_core.models.deep.lstm_ccca import LSTMClusterCCA  # noqa: E402
from crossmodal_core.models.deep.seq_transformer import CrossModalTransformer  # noqa: E402

__all__ = [
    "ACMR",
    "AGAH",
    "CheckpointError",
    "ClusterDCCA",
    "ContrastiveAligner",
    "CrossModalVAE",
    "DCCA",
    "SupervisedDCCA",
    "TNNClusterCCA",
    "TorchCrossModalEstimator",
    "TrainingDivergedError",
    "UCAL",
    "UGAAR",
    "UGACH",
    "fit_loop",
    "make_tower",
    "resolve_device",
    "seeded",
    # sequence models
    "ChunkAttentionCCA",
    "CrossModalTransformer",
    "LSTMClusterCCA",
]

