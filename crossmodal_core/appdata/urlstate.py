"""Shareable views: a page's choices <-> URL query parameters, validated (no Streamlit here).

A link such as ``/retrieval?dataset=music&label=work&pair=sheet~audio&model=ccca&q=bach-1_3``
opens the same view elsewhere. The parameters are the public format of a shared link, so their
names are short and stable (the ``*_KEY`` constants below).

Every value from a URL is hostile: a :class:`Reader` accepts a value only when it is exactly
the encoding of one of the options the page offers (so a URL value never becomes a path, a
model that is not trained is never loaded, an item id that is not in the dataset is never
looked up), and otherwise returns the page's default and records a notice that names the
parameter and says what is shown instead. Over-long values, too many parameters and malformed
numbers or selections are refused the same way; nothing here raises on a bad URL.

Encodings: a modality pair or direction is ``"a~b"`` (``~`` needs no escaping in a URL); an
explorer selection (dataset rows) is sorted ranges ``"3-7.10.15-20"``, not shared at all when
it would exceed :data:`MAX_SELECTION_CHARS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlencode

__all__ = [
    "Reader", "encode_pair", "encode_selection", "decode_selection", "query_string", "link", "shown",
    "MAX_VALUE_CHARS", "MAX_SELECTION_CHARS", "MAX_PARAMS", "SHARED_KEYS",
    "DATASET_KEY", "LABEL_KEY", "PAIR_KEY", "MODEL_KEY", "PANEL_KEYS", "MAP_KEY", "COLOUR_KEY", "SELECTION_KEY",
    "QUERY_KEY", "DIRECTION_KEY", "TOP_K_KEY", "ANALYSIS_KEY", "WORK_KEY", "PHRASE_KEY", "CELL_KEY",
]

T = TypeVar("T")

#: a single value longer than this is refused (item ids, dataset ids and names are far shorter)
MAX_VALUE_CHARS = 200
#: the explorer selection's encoding; a larger selection is left out of the link (with a notice)
MAX_SELECTION_CHARS = 1500
#: a URL with more parameters than this is ignored as a whole (a page uses about ten)
MAX_PARAMS = 40

DATASET_KEY, LABEL_KEY, PAIR_KEY = "dataset", "label", "pair"
#: the sidebar's choices, kept by every page (and carried from page to page)
SHARED_KEYS = (DATASET_KEY, LABEL_KEY, PAIR_KEY)
MODEL_KEY = "model"
PANEL_KEYS = ("panel1", "panel2", "panel3")
MAP_KEY, COLOUR_KEY, SELECTION_KEY = "map", "colour", "sel"
QUERY_KEY, DIRECTION_KEY, TOP_K_KEY, ANALYSIS_KEY = "q", "dir", "k", "show"
WORK_KEY, PHRASE_KEY, CELL_KEY = "work", "phrase", "cell"

_SELECTION_RE = re.compile(r"^\d{1,9}(-\d{1,9})?(\.\d{1,9}(-\d{1,9})?)*$")
_UNSAFE = re.compile(r"[^\w .:~+@/-]")


def shown(raw: str, limit: int = 40) -> str:
    """``raw`` made safe to print inside a notice rendered as Markdown: a code span of at most
    ``limit`` characters with anything but letters, digits and ``_ .:~+@/-`` replaced by ``?``
    (a crafted link cannot inject links, images or formatting into the page)."""
    text = _UNSAFE.sub("?", str(raw)[:limit]) + ("…" if len(str(raw)) > limit else "")
    return f"`{text}`"


def encode_pair(pair: Sequence[str]) -> str:
    """``("audio", "visual")`` -> ``"audio~visual"`` (a modality pair or a query direction)."""
    return "~".join(str(v) for v in pair)


def encode_selection(rows: Iterable[int]) -> str | None:
    """Sorted dataset rows as ranges (``[3, 4, 5, 9]`` -> ``"3-5.9"``); ``""`` for none,
    None when the encoding would be longer than :data:`MAX_SELECTION_CHARS`."""
    rows = sorted({int(r) for r in rows})
    parts: list[str] = []
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] == rows[j] + 1:
            j += 1
        parts.append(str(rows[i]) if i == j else f"{rows[i]}-{rows[j]}")
        i = j + 1
    text = ".".join(parts)
    return text if len(text) <= MAX_SELECTION_CHARS else None


def decode_selection(raw: str, n_items: int) -> list[int] | None:
    """The rows of an :func:`encode_selection` string, or None when it is malformed, too long,
    has a range running backwards, out of order or overlapping another, or names a row outside
    ``[0, n_items)``."""
    if not isinstance(raw, str) or len(raw) > MAX_SELECTION_CHARS or not _SELECTION_RE.match(raw or "0"):
        return None
    if raw == "":
        return []
    rows: list[int] = []
    for part in raw.split("."):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        # checked before a range is expanded ("0-999999999" allocates nothing), and ranges must
        # ascend without overlapping (as encode_selection writes them), so the work is <= n_items
        if b < a or b >= n_items or (rows and a <= rows[-1]):
            return None
        rows.extend(range(a, b + 1))
    return rows


def query_string(params: Mapping[str, str]) -> str:
    """``params`` URL-encoded in their given order (what the browser shows after ``?``)."""
    return urlencode([(k, v) for k, v in params.items() if v is not None])


def link(base_url: str | None, params: Mapping[str, str]) -> str:
    """The full link to a view: ``base_url`` (the page's address, without a query) plus the
    query string; only ``?query`` when the address is unknown."""
    qs = query_string(params)
    base = (base_url or "").split("?", 1)[0].split("#", 1)[0]
    return f"{base}?{qs}" if qs else (base or "?")


class Reader:
    """Validated reads of URL query parameters, with a notice for each refused value.

    ``params`` maps names to a string or a list of strings (the last one counts, as in
    ``st.query_params``). ``quiet`` are values to use where ``params`` has none (a page's last
    view in this session): they are validated the same way, but one that no longer fits (its
    model was deleted, the dataset changed) falls back without a notice, since no link asked
    for it. Nothing raises: a bad value yields the caller's default.
    """

    def __init__(self, params: Mapping[str, object] | None = None, quiet: Mapping[str, str] | None = None):
        self.notices: list[str] = []
        self.params: dict[str, str] = {}
        self.quiet = {k: v for k, v in (quiet or {}).items() if isinstance(k, str) and isinstance(v, str)}
        params = dict(params or {})
        if len(params) > MAX_PARAMS:
            self.notices.append(f"The link has {len(params)} parameters (at most {MAX_PARAMS} are read): "
                                "it was ignored and the default view is shown.")
            return
        for key, value in params.items():
            if isinstance(value, (list, tuple)):
                value = value[-1] if value else ""
            if not isinstance(key, str) or not isinstance(value, str):
                continue
            limit = MAX_SELECTION_CHARS if key == SELECTION_KEY else MAX_VALUE_CHARS
            if len(value) > limit:
                self.notices.append(f"The link's {shown(key, 20)} value is {len(value):,} characters long "
                                    f"(at most {limit:,}): ignored.")
                continue
            self.params[key] = value

    def __contains__(self, key: str) -> bool:
        return key in self.params or key in self.quiet

    def raw(self, key: str) -> str | None:
        return self.params.get(key, self.quiet.get(key))

    def _notify(self, key: str, text: str) -> None:
        if key in self.params:
            self.notices.append(text)

    def choice(self, key: str, options: Sequence[T], default: T, *, what: str,
               encode: Callable[[T], str] = str, describe: Callable[[T], str] | None = None,
               aliases: Mapping[str, str] | None = None) -> T:
        """The option whose ``encode`` is the URL's value of ``key`` (after ``aliases``, other
        spellings of an encoding); ``default`` when the URL has no such parameter, or (with a
        notice) when its value matches no option."""
        raw = self.raw(key)
        if raw is None:
            return default
        wanted = (aliases or {}).get(raw, raw)
        for option in options:
            if encode(option) == wanted:
                return option
        return self._refused(key, raw, what, len(options), default, describe or encode)

    def lookup(self, key: str, options: Mapping[str, T], default: T, *, what: str,
               describe: Callable[[T], str] | None = None) -> T:
        """Like :meth:`choice` over ``{encoding: option}`` (one dict look-up: many items)."""
        raw = self.raw(key)
        if raw is None:
            return default
        if raw in options:
            return options[raw]
        return self._refused(key, raw, what, len(options), default, describe or str)

    def _refused(self, key: str, raw: str, what: str, n_options: int, default: T,
                 describe: Callable[[T], str]) -> T:
        instead = describe(default)
        available = "none is available" if not n_options else f"{n_options:,} available"
        self._notify(key, f"The link's {what} {shown(raw)} is not available here ({available}); "
                            f"showing {instead}.")
        return default

    def integer(self, key: str, lo: int, hi: int, default: int, *, what: str) -> int:
        """The URL's integer ``key`` when it lies in ``[lo, hi]``, else ``default`` (notice)."""
        raw = self.raw(key)
        if raw is None:
            return default
        if re.fullmatch(r"-?\d{1,12}", raw) and lo <= int(raw) <= hi:
            return int(raw)
        self._notify(key, f"The link's {what} {shown(raw)} is not a whole number from {lo} to {hi}; "
                            f"showing {default}.")
        return default

    def selection(self, key: str, n_items: int, default: list[int] | None = None) -> list[int] | None:
        """The URL's selection of dataset rows (see :func:`decode_selection`); ``default`` when
        absent, or (with a notice) when it is malformed or names rows the dataset lacks."""
        raw = self.raw(key)
        if raw is None:
            return default
        rows = decode_selection(raw, n_items)
        if rows is None:
            self._notify(key, f"The link's selection {shown(raw)} is not a list of rows of this dataset "
                                f"(0 to {n_items - 1}): ignored.")
            return default
        return rows

    def take_notices(self) -> list[str]:
        """The notices so far, forgotten once taken (each is shown once)."""
        out, self.notices = self.notices, []
        return out
