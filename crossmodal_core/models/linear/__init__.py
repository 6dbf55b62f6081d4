"""Linear (and Nyström-kernel) CCA family: CCA, KCCA, ClusterCCA, ClusterKCCA, ridge selection.

Shared conventions (ridge scale, normalisation, sign, precision) are documented in
:mod:`crossmodal_core.models.linear._linalg`.
"""

from crossmodal_core.models.linear.cca import CCA
from crossmodal_core.models.linear.cluster import ClusterCCA, ClusterStatistics
from crossmodal_core.models.linear.kcca import KCCA, ClusterKCCA
from crossmodal_core.models.linear.selection import select_regularization

__all__ = ["CCA", "KCCA", "ClusterCCA", "ClusterKCCA", "ClusterStatistics", "select_regularization"]
