"""Deprecated location of :class:`Note` and :class:`Fragment`: they live in
:mod:`crossmodal_core.notes` (below ``synth``, ``render`` and ``data.music``). This re-export
stays until the last import of ``crossmodal_core.data.music.fragment`` is gone."""

from crossmodal_core.notes import Fragment, Note  # noqa: F401

__all__ = ["Fragment", "Note"]
