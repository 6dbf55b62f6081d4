"""The shareable-view parameters (crossmodal_core.appdata.urlstate): round trips, and every
bad value falling back to the default with a notice instead of raising."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmodal_core.appdata import urlstate
from crossmodal_core.appdata.urlstate import Reader

PAIRS = [("audio", "visual"), ("sheet", "lyrics"), ("sheet", "audio")]


def test_choice_round_trip_and_absent_key_is_silent():
    r = Reader({"pair": urlstate.encode_pair(("sheet", "audio")), "model": "ccca"})
    assert r.choice("pair", PAIRS, PAIRS[0], what="pair", encode=urlstate.encode_pair) == ("sheet", "audio")
    assert r.choice("model", ["cca", "ccca"], "cca", what="model") == "ccca"
    assert r.choice("dataset", ["a", "b"], "b", what="dataset") == "b"
    assert r.notices == []


def test_unknown_value_gives_the_default_and_a_notice_naming_both():
    r = Reader({"model": "ugaar"})
    assert r.choice("model", ["cca", "ccca"], "cca", what="model", describe=str.upper) == "cca"
    (notice,) = r.take_notices()
    assert "model" in notice and "`ugaar`" in notice and "CCA" in notice and "2 available" in notice
    assert r.take_notices() == [], "a notice is shown once"


def test_aliases_map_other_spellings_to_an_option():
    r = Reader({"dataset": "music"})
    assert r.choice("dataset", ["music21", "file:x.npz"], "file:x.npz", what="dataset",
                    aliases={"music": "music21"}) == "music21"
    assert not r.notices


def test_a_path_is_never_an_option():
    r = Reader({"dataset": "../../etc/passwd"})
    assert r.choice("dataset", ["music21", "file:tiny_a.npz"], "music21", what="dataset") == "music21"
    assert len(r.notices) == 1


def test_lookup_by_item_id():
    ids = {"bach-1_3": 7, "x": 0}
    assert Reader({"q": "bach-1_3"}).lookup("q", ids, None, what="query") == 7
    r = Reader({"q": "nope"})
    assert r.lookup("q", ids, None, what="query", describe=lambda _: "the first query") is None
    assert "the first query" in r.notices[0]


@pytest.mark.parametrize("raw", ["0", "51", "-3", "abc", "", "1e3", "3.5", "9" * 40])
def test_integer_out_of_range_or_garbage_falls_back(raw):
    r = Reader({"k": raw})
    assert r.integer("k", 1, 50, 10, what="top K") == 10
    assert len(r.notices) == 1 and "from 1 to 50" in r.notices[0]


def test_integer_in_range():
    assert Reader({"k": "50"}).integer("k", 1, 50, 10, what="k") == 50
    assert Reader({"k": "1"}).integer("k", 1, 50, 10, what="k") == 1


def test_oversized_value_is_refused_before_any_lookup():
    r = Reader({"model": "c" * (urlstate.MAX_VALUE_CHARS + 1), "k": "5"})
    assert "model" not in r and r.integer("k", 1, 50, 10, what="k") == 5
    assert r.choice("model", ["c" * (urlstate.MAX_VALUE_CHARS + 1)], "cca", what="model") == "cca"
    assert len(r.notices) == 1 and "characters long" in r.notices[0]


def test_too_many_parameters_are_ignored_as_a_whole():
    r = Reader({f"p{i}": "1" for i in range(urlstate.MAX_PARAMS + 1)})
    assert r.params == {} and len(r.notices) == 1


def test_repeated_parameter_uses_the_last_value_like_streamlit():
    assert Reader({"map": ["umap", "pca"]}).choice("map", ["umap", "pca"], "umap", what="map") == "pca"


def test_quiet_values_fall_back_without_a_notice_and_the_link_wins():
    r = Reader({}, quiet={"model": "deleted", "k": "12"})
    assert r.choice("model", ["cca"], "cca", what="model") == "cca"
    assert r.integer("k", 1, 50, 10, what="k") == 12
    assert r.notices == []
    assert Reader({"k": "3"}, quiet={"k": "12"}).integer("k", 1, 50, 10, what="k") == 3


def test_notice_text_cannot_inject_markdown():
    r = Reader({"model": "![x](http://evil.example/p.png)`**bold**"})
    r.choice("model", ["cca"], "cca", what="model")
    text = r.notices[0]
    assert not set("[]()*!<>") & set(text.split("`")[1])  # no link, image, emphasis or HTML survives
    assert text.count("`") == 2  # inside one code span (Markdown is not rendered there)
    assert urlstate.shown("a" * 100).endswith("…`") and len(urlstate.shown("a" * 100)) == 43


@pytest.mark.parametrize("rows, text", [([], ""), ([5], "5"), ([3, 4, 5, 9], "3-5.9"), ([9, 3, 5, 4, 4], "3-5.9"),
                                        ([0, 2, 4], "0.2.4"), ([10, 11], "10-11")])
def test_selection_encoding(rows, text):
    assert urlstate.encode_selection(rows) == text
    assert urlstate.decode_selection(text, 100) == sorted(set(rows))


@pytest.mark.parametrize("raw", ["5-3", "1..2", "a", "1-", "-1", "1-2-3", "3.", "0-100", "100", " 1", "1,2",
                                 "5.3", "1-5.4-9", "2.2", "0-99." * 10 + "0"])
def test_malformed_or_out_of_range_selection(raw):
    assert urlstate.decode_selection(raw, 100) is None
    r = Reader({"sel": raw})
    assert r.selection("sel", 100, []) == [] and len(r.notices) == 1


def test_a_huge_range_allocates_nothing():
    assert urlstate.decode_selection("0-999999999", 1000) is None


def test_selection_too_long_for_a_link():
    every_other = list(range(0, 4000, 2))  # 2,000 single rows, no ranges
    assert urlstate.encode_selection(every_other) is None
    assert urlstate.encode_selection(range(0, 100_000)) == "0-99999"  # one range: short


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 5000), max_size=300))
def test_selection_round_trip_property(rows):
    text = urlstate.encode_selection(rows)
    if text is None:  # ranges are never longer than listing every row
        assert len(".".join(map(str, sorted(rows)))) > urlstate.MAX_SELECTION_CHARS
    else:
        assert len(text) <= urlstate.MAX_SELECTION_CHARS
        assert urlstate.decode_selection(text, 5001) == sorted(rows)
        assert Reader({"sel": text}).selection("sel", 5001) == sorted(rows)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=300), st.lists(st.text(max_size=20))),
                       max_size=50))
def test_garbage_never_raises_and_yields_valid_values(params):
    r = Reader(params)
    assert r.choice("model", ["cca", "ccca"], "cca", what="model") in ("cca", "ccca")
    assert r.choice("pair", PAIRS, PAIRS[0], what="pair", encode=urlstate.encode_pair) in PAIRS
    assert 1 <= r.integer("k", 1, 50, 10, what="k") <= 50
    rows = r.selection("sel", 50, [])
    assert all(0 <= x < 50 for x in rows)
    assert r.lookup("q", {"a": 1}, None, what="query") in (1, None)
    for notice in r.notices:
        assert "](" not in notice


def test_link_and_query_string_round_trip():
    params = {"dataset": "file:tiny_a.npz", "pair": "audio~visual", "q": "item 7/ä", "k": "10"}
    text = urlstate.link("http://host:8501/retrieval?old=1#x", params)
    parts = urlsplit(text)
    assert parts.scheme == "http" and parts.path == "/retrieval"
    assert {k: v[-1] for k, v in parse_qs(parts.query).items()} == params
    assert "~" in parts.query, "the pair separator needs no escaping"
    assert urlstate.link(None, {"k": "3"}) == "?k=3"
    assert urlstate.link("http://h/", {}) == "http://h/"
