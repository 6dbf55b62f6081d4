"""Media of one item of the music dataset: synthesised audio, engraved score, the player."""

from __future__ import annotations

from crossmodal_core import store
from crossmodal_core.data.catalog import LoadedDataset

__all__ = ["has_media", "audio_wav", "audio_file", "score_svg", "player_html"]


def has_media(app: LoadedDataset) -> bool:
    """Whether items carry notes we can synthesise and engrave (the music dataset)."""
    return app.fragments is not None


def audio_wav(app: LoadedDataset, row: int, start_s: float | None = None, end_s: float | None = None) -> bytes | None:
    """WAV bytes of item ``row`` synthesised from its notes (``None`` without notes).

    ``start_s`` / ``end_s`` cut a segment (seconds from the fragment start)."""
    if app.fragments is None:
        return None
    from crossmodal_core import synth

    y = synth.audio_for(app.fragments[row])
    sr = synth.DEFAULT_SAMPLE_RATE
    if start_s is not None or end_s is not None:
        a = int(max(0.0, start_s or 0.0) * sr)
        b = len(y) if end_s is None else int(min(len(y), end_s * sr))
        y = y[a:max(a + 1, b)]
    return synth.audio_bytes_wav(y, sr)


def audio_file(app: LoadedDataset, row: int) -> tuple[bytes, str] | tuple[None, None]:
    """``(bytes, mime type)`` of item ``row``'s synthesised audio, the compact FLAC that
    :func:`crossmodal_core.synth.audio_for` caches (about half a WAV's size), else WAV."""
    if app.fragments is None:
        return None, None
    from crossmodal_core import synth

    fragment = app.fragments[row]
    y = synth.audio_for(fragment)  # makes sure the cached file exists
    cached = store.audio_cache_dir() / f"{synth.audio_cache_key(fragment)}.flac"
    if cached.is_file():
        return cached.read_bytes(), "audio/flac"
    return synth.audio_bytes_wav(y, synth.DEFAULT_SAMPLE_RATE), "audio/wav"


def score_svg(app: LoadedDataset, row: int) -> str | None:
    """Engraved SVG of item ``row`` with its lyrics under the notes (``None`` without notes)."""
    if app.fragments is None:
        return None
    from crossmodal_core import render

    svg, _timemap = render.fragment_svg(app.fragments[row])
    return svg


def player_html(app: LoadedDataset, row: int) -> str | None:
    """HTML with the engraved score and an audio player that highlights the sounding note."""
    if app.fragments is None:
        return None
    from crossmodal_core import render

    return render.highlight_player_html(app.fragments[row])
