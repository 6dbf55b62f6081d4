"""Fixed-size descriptors of the three music views, one module each.

- :mod:`crossmodal_core.features.audio` -- librosa log-mel / chroma / MFCC statistics and a
  time-pooled log-mel sequence (``audio_features``, ``audio_sequence``).
- :mod:`crossmodal_core.features.sheet` -- symbolic features from the notes: pitch-class,
  interval and duration histograms, contour, a small piano roll (``sheet_features``).
- :mod:`crossmodal_core.features.lyrics` -- character n-gram TF-IDF + SVD and syllable
  structure (``LyricsFeaturizer``), optionally a sentence embedding.

Each module documents its output layout (``*_FEATURE_LAYOUT``: name -> slice). Submodules are
not imported here so that importing one view does not pay for the others (librosa is slow to
import); none of them imports torch.
"""


def block_layout(blocks: list[tuple[str, int]]) -> dict[str, slice]:
    """Name -> slice of a feature vector made of consecutive blocks of the given sizes."""
    layout, start = {}, 0
    for name, size in blocks:
        layout[name] = slice(start, start + size)
        start += size
    return layout
