"""crossmodal: cross-modal embedding learning and retrieval for music.

Layers (data flows one way): ``data`` -> ``features`` -> ``models`` ->
``metrics`` / ``retrieval`` / ``projection`` -> ``store``. Nothing in this package
imports Streamlit; ``data`` and ``features`` never import torch.
"""

__version__ = "0.1.0"
