"""The music21-corpus sheet / lyrics / audio dataset.

- :class:`Note` and :class:`Fragment`, the unit of the dataset, live in :mod:`crossmodal_core.notes`.
- :mod:`.corpus` -- which corpus scores carry usable lyrics; parsing; language and metadata.
- :mod:`.phrases` -- parts -> monophonic events (ties merged) -> phrases -> fragments.
- :mod:`.build` -- the ``build-music`` command: fragments -> audio -> features -> files,
  and :func:`load_music_dataset`.

music21 is imported only when a score is parsed, so importing this package is cheap.
"""

from crossmodal_core.data.music.build import build_music_dataset, load_music_dataset
from crossmodal_core.notes import Fragment, Note

__all__ = ["Fragment", "Note", "build_music_dataset", "load_music_dataset"]
