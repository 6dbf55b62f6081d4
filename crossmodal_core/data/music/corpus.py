"""Find the lyric-bearing scores of the music21 corpus and read their metadata.

The music21 wheel ships its corpus offline. Only some of it has usable lyrics under the
notes; which parts, and why the rest is left out, is decided here:

- ``bach``: the four-part chorales; the soprano carries the (German) text.
- ``trecento``: 14th-century Italian secular songs and Latin Mass movements (texted voices).
- ``songs``: the single texted songs of the corpus (Beach, Handel, Johnson, the two lead
  sheets, Liliuokalani, da Luca, Lusitano, Schubert, Schumann, Verdi, Webern).

Left out on purpose (see :data:`EXCLUDED`): Monteverdi (the encoded lyrics are garbled,
"sa? ria ben ar? sojl"), Palestrina / Essen / Ryan's Mammoth / O'Neill / Nottingham / Airds
(no lyrics), Josquin (music21's ABC parser drops its lyrics), test/demo files, and instrumental
works whose only "lyrics" are figures or markers.

Selection is a cheap raw-text scan (count of ``<lyric`` elements in the MusicXML, which
needs no parse), so listing candidates takes about a second; parsing happens later, per
score, in worker processes.
"""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

#: collection name -> corpus-relative path prefixes (files with lyrics under them are used).
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "bach": ("bach/",),
    "trecento": ("trecento/", "ciconia/"),
    "songs": (
        "beach/prayer_of_a_tired_child",
        "handel/rinaldo/",
        "johnson_j_r/lift_every_voice",
        "leadSheet/",
        "liliuokalani/aloha_oe",
        "luca/gloria",
        "lusitano/allor_che_ignuda",
        "schubert/Lindenbaum",
        "schumann_robert/opus48no2",
        "verdi/laDonnaEMobile",
        "webern/webern_dormi_jesu",
    ),
}

#: corpus-relative prefix -> why it is not used (logged once when a caller asks for it).
EXCLUDED: dict[str, str] = {
    "monteverdi/": "lyrics garbled in the source encoding",
    "palestrina/": "no lyrics in the Humdrum encodings",
    "essenFolksong/": "no lyrics",
    "ryansMammoth/": "no lyrics",
    "oneills1850/": "no lyrics",
    "nottingham-dataset/": "no lyrics",
    "airdsAirs/": "no lyrics",
    "josquin/": "music21's ABC parser drops the lyrics",
    "schumann_robert/dichterliebe_no2": "duplicate encoding of schumann_robert/opus48no2",
    "trecento/PMFC_12_4-Gloria Rvat 1419_bak": "backup copy of PMFC_12_4-Gloria Rvat 1419",
    "demos/": "test files",
    "theoryExercises/": "test files",
    "corelli/": "instrumental (lyrics are figures)",
    "haydn/": "instrumental",
    "joplin/": "instrumental",
}

#: minimum number of <lyric> elements for a file to count as texted
MIN_LYRICS = 20

SCORE_SUFFIXES = (".xml", ".mxl", ".musicxml")
_LYRIC_TAG = re.compile(r"<lyric[\s>]")


@dataclass(frozen=True)
class ScoreRef:
    """A candidate score (one work).

    A corpus score: ``corpus_path`` is relative to the corpus root, with extension, and
    ``file`` is empty. A user's score (:mod:`.userscores`): ``corpus_path`` is the file's
    path relative to the user's folder, printable (for reports and display), and ``file``
    its absolute path, used only to open it.
    """

    corpus_path: str
    collection: str
    n_lyrics: int
    file: str = ""

    @property
    def work_id(self) -> str:
        """The corpus path without extension (``"bach/bwv269"``): one work = one score file.
        A user's file name is slugged per folder level (it ends up in ids and cache names)."""
        stem = self.corpus_path.rsplit(".", 1)[0]
        if not self.file:
            return stem
        from crossmodal_core import store

        return "/".join(store.slug(part) for part in stem.split("/"))

    @property
    def path(self) -> Path:
        """Where the score file is."""
        return Path(self.file) if self.file else corpus_root() / self.corpus_path


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


def read_musicxml_text(path: Path) -> str:
    """The MusicXML text of a ``.xml``/``.musicxml`` or compressed ``.mxl`` file.

    Decodes UTF-16 files (25 trecento files are UTF-16 with a byte-order mark) as well as
    UTF-8; raises ``ValueError`` naming the file when it is not readable MusicXML.
    """
    path = Path(path)
    try:
        if path.suffix == ".mxl":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist()
                         if not n.startswith("META-INF") and n.endswith((".xml", ".musicxml"))]
                if not names:
                    raise ValueError(f"{path}: .mxl archive holds no MusicXML file")
                data = zf.read(names[0])
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    return data.decode("utf-8", errors="replace")


def _collection_of(rel: str) -> str | None:
    for name, prefixes in COLLECTIONS.items():
        if any(rel.startswith(p) for p in prefixes):
            return name
    return None


def _excluded_reason(rel: str) -> str | None:
    for prefix, why in EXCLUDED.items():
        if rel.startswith(prefix):
            return why
    return None


def find_lyric_scores(collections: Iterable[str] | None = None, root: Path | None = None) -> list[ScoreRef]:
    """Every texted score of the chosen collections, sorted by corpus path.

    Parameters
    ----------
    collections : names from :data:`COLLECTIONS` (default: all)
    root : corpus folder (default: the installed music21 corpus)

    Returns
    -------
    list of :class:`ScoreRef`, sorted by ``corpus_path`` (so builds are deterministic)
    """
    wanted = set(COLLECTIONS) if collections is None else set(collections)
    unknown = wanted - set(COLLECTIONS)
    if unknown:
        raise ValueError(f"unknown collection(s) {sorted(unknown)}; known: {sorted(COLLECTIONS)}")
    root = Path(root) if root is not None else corpus_root()
    refs = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in SCORE_SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        collection = _collection_of(rel)
        if collection is None or collection not in wanted or _excluded_reason(rel):
            continue
        try:
            n = len(_LYRIC_TAG.findall(read_musicxml_text(path)))
        except ValueError as exc:
            log.warning("skipping %s: %s", rel, exc)
            continue
        if n < MIN_LYRICS:
            continue
        ref = ScoreRef(rel, collection, n)
        # the same work is sometimes stored twice (.mxl and .xml): keep the first, sorted
        if any(r.work_id == ref.work_id for r in refs):
            log.info("skipping %s: second encoding of %s", rel, ref.work_id)
            continue
        refs.append(ref)
    return refs


def parse_score(corpus_path: str, root: Path | None = None):
    """Parse a corpus score with music21 (its pickle cache makes re-parses fast).

    Falls back to decoding the file ourselves (UTF-16) and ``converter.parseData`` when
    music21's own reader fails. Raises ``ValueError`` naming the file if neither works.
    """
    from music21 import converter, corpus

    root = Path(root) if root is not None else corpus_root()
    try:
        return corpus.parse(corpus_path)
    except Exception as first:  # music21 raises many exception types for bad files
        try:
            text = read_musicxml_text(root / corpus_path)
            return converter.parseData(text, format="musicxml")
        except Exception as exc:
            raise ValueError(f"{corpus_path}: music21 cannot parse it ({first}; {exc})") from None


# ---------------------------------------------------------------------- metadata
# Stopwords are deliberately distinctive per language (no words shared between two lists),
# since langdetect has no Latin and the texts are short and archaic.
_STOPWORDS: dict[str, frozenset[str]] = {
    "German": frozenset(
        "und der die das ich du er ist nicht mit dein mein sein sich ein eine zu auf den dem des "
        "wir uns ihr mich dich mir dir wie auch so nun wenn was wird hat hast bist gott herr "
        "herz herzen ach gib dass daß von aus fur für zum zur im sind".split()),
    "Latin": frozenset(
        "et est qui quae quod ad cum deus dei deo domine dominus domini nos nobis tu te tibi "
        "sancte sanctus gloria excelsis pax pacem hominibus laudamus benedicimus adoramus "
        "glorificamus patris filius filii spiritu sancto amen kyrie eleison christe credo unum "
        "omnipotens factorem caeli celi terrae terre omnium visibilium ex sub sunt ab per "
        "secula seculorum saecula virgine virginis maria agnus peccata mundi miserere "
        "benedicamus domino gratias alleluia".split()),
    "Italian": frozenset(
        "il che di per mi ti lo gli una ch con del della nel sua suo mio mia ogni piu più "
        "sono amor amore donna cor core quando come ma se si ne chi io ella quel quella "
        "questa questo dolce occhi begli".split()),
    "English": frozenset(
        "the and of to you my is that it for with your this all his her our we are was "
        "when what from will they them their thee thy thou shall not have".split()),
    "French": frozenset(
        "le les je vous mon ma mes est pas mais qui que en ce cuer amours dame plus tout "
        "moy mort mon helas".split()),
}


def detect_language(words: Iterable[str]) -> str:
    """Guess the language of a part from its lyric words with a stopword vote.

    Returns one of ``"German"``, ``"Latin"``, ``"Italian"``, ``"English"``, ``"French"`` or
    ``"unknown"`` (no stopword at all). Words are lower-cased and stripped of punctuation
    and apostrophes before matching.
    """
    counts = dict.fromkeys(_STOPWORDS, 0)
    for w in words:
        for token in re.split(r"[^\wäöüßàèéìòù]+", w.lower()):
            if not token:
                continue
            for lang, stop in _STOPWORDS.items():
                if token in stop:
                    counts[lang] += 1
    best = max(counts, key=lambda k: (counts[k], k))
    return best if counts[best] > 0 else "unknown"


_GENERIC_TITLE = re.compile(r"^(kyrie|gloria|credo|sanctus|agnus dei|benedicamus)$", re.I)
_LEADING_NUMBER = re.compile(r"^\s*\d+[a-z]?\s*(\(\d+\))?\s*[.)]\s*")


def score_title(score, corpus_path: str) -> str:
    """The work title: the encoded title without its edition number ("48 (139). Cara mi
    donna" -> "Cara mi donna"); a bare Mass-movement name takes the file name's description
    ("1. Kyrie" in PMFC_12_1-Kyrie Rondello.xml -> "Kyrie Rondello"); else the file name."""
    override = METADATA_OVERRIDES.get(corpus_path.rsplit(".", 1)[0])
    if override:
        return override[0]
    md = score.metadata
    stem = Path(corpus_path).stem.replace("_", " ")
    for attr in ("title", "movementName"):
        value = getattr(md, attr, None) if md is not None else None
        if value and not str(value).endswith((".xml", ".mxl", ".musicxml")):
            title = _LEADING_NUMBER.sub("", str(value)).strip() or str(value).strip()
            if _GENERIC_TITLE.match(title) and "-" in stem:
                return stem.split("-", 1)[1].strip()
            return title
    # PMFC file names: "PMFC 06 Giovanni-01-Angnel son biancho" -> "Angnel son biancho"
    m = _PMFC_STEM.match(stem)
    return m.group(2).strip() if m else stem


_PMFC_STEM = re.compile(r"^PMFC[ _]?\d+[ _]*(?:([A-Za-z]+)[ _]*-?)?[ _]*\d+[a-z]?(?:\s*-\s*|\s+)(.+)$")
#: composer named in a PMFC file name (the encodings without a composer field)
_PMFC_COMPOSERS = {"Giovanni": "Giovanni da Cascia", "Jacopo": "Jacopo da Bologna", "Piero": "Piero"}


#: (title, composer) for the few texted scores whose encoding names neither
METADATA_OVERRIDES: dict[str, tuple[str, str]] = {
    "verdi/laDonnaEMobile": ("La donna è mobile", "Giuseppe Verdi"),
    "handel/rinaldo/Lascia_chio_pianga": ("Lascia ch'io pianga", "George Frideric Handel"),
}


def score_composer(score, collection: str, corpus_path: str = "") -> str:
    """The encoded composer (first line only: some add an opus or a manuscript siglum on a
    second line), else a per-collection default."""
    override = METADATA_OVERRIDES.get(corpus_path.rsplit(".", 1)[0])
    if override:
        return override[1]
    md = score.metadata
    composer = getattr(md, "composer", None) if md is not None else None
    if composer and str(composer).strip():
        return " ".join(str(composer).strip().splitlines()[0].split())
    m = _PMFC_STEM.match(Path(corpus_path).stem.replace("_", " "))
    if m and m.group(1) in _PMFC_COMPOSERS:
        return _PMFC_COMPOSERS[m.group(1)]
    return {"bach": "J.S. Bach", "trecento": "Anonymous"}.get(collection, "unknown")
