"""The score_image view: the raster follows the engraving and time, hostile SVG is refused, the
segment split is time-aligned, and the committed view is row-aligned with the fragments."""

import json

import numpy as np
import pytest

pytest.importorskip("verovio")
pytest.importorskip("resvg_py")

from crossmodal_core.features import score_image as si  # noqa: E402
from crossmodal_core.features.resample import resample_columns  # noqa: E402
from crossmodal_core.notes import Fragment, Note  # noqa: E402

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def _fragment(pitches, durations=None, fid="test:1", meter="4/4", key="C major", tempo=80.0):
    durations = durations or [1.0] * len(pitches)
    onsets = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    notes = [Note(int(p), float(o), float(d)) for p, o, d in zip(pitches, onsets, durations)]
    return Fragment(fid, "test.xml", 0, 1, 2, 1, notes, "", meter=meter, key=key, tempo_bpm=tempo, work_id="test")


# ---------------------------------------------------------------------- rasteriser
def test_blank_svg_is_a_blank_image_and_a_rectangle_is_its_own_ink():
    blank = si.rasterize_svg(f'<svg {SVG_NS} viewBox="0 0 10 10"></svg>', 40, 20)
    assert blank.shape == (20, 40) and blank.dtype == np.float32 and not blank.any()
    # a black rectangle over the left half: full ink there, none on the right (canvas stretched)
    half = si.rasterize_svg(f'<svg {SVG_NS} viewBox="0 0 10 10"><rect x="0" y="0" width="5" height="10"/></svg>', 40, 20)
    np.testing.assert_allclose(half[:, :20], 1.0, atol=1e-6)
    np.testing.assert_allclose(half[:, 20:], 0.0, atol=1e-6)
    # white ink is no ink, grey is half
    grey = si.rasterize_svg(f'<svg {SVG_NS} viewBox="0 0 1 1"><rect width="1" height="1" fill="#808080"/></svg>', 4, 4)
    np.testing.assert_allclose(grey, 1 - 128 / 255, atol=0.01)


@pytest.mark.parametrize("svg, why", [
    ('<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg ' + SVG_NS + ' viewBox="0 0 1 1">&a;</svg>', "doctype"),
    ('<svg ' + SVG_NS + ' viewBox="0 0 1 1"><image href="file:///etc/passwd" width="1" height="1"/></svg>', "image"),
    ('<svg ' + SVG_NS + ' xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 1 1">'
     '<use xlink:href="other.svg#x"/></svg>', "refers outside"),
    ('<svg ' + SVG_NS + ' viewBox="0 0 1 1"><rect fill="url(http://example.org/p)" width="1" height="1"/></svg>',
     "refers outside"),
    ("not an svg at all", "not an SVG"),
    # namespaced forms of the refused elements
    ('<svg:svg xmlns:svg="http://www.w3.org/2000/svg" viewBox="0 0 1 1">'
     '<svg:image href="#x" width="1" height="1"/></svg:svg>', "image"),
    ('<svg ' + SVG_NS + ' xmlns:s="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><s:script>x</s:script></svg>',
     "script"),
    ('<svg ' + SVG_NS + ' xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 1 1">'
     '<xlink:a xlink:href="#x"/></svg>', "xlink:a"),
    # <use> fan-out: a "billion laughs" of nested <use>, a <use> of its own ancestor, too many <use>
    ('<svg ' + SVG_NS + ' xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 1 1"><defs>'
     '<rect id="a0" width="1" height="1"/>'
     + "".join(f'<g id="a{i}">' + f'<use xlink:href="#a{i - 1}"/>' * 10 + "</g>" for i in range(1, 9))
     + '</defs><use xlink:href="#a8"/></svg>', "nested references"),
    ('<svg ' + SVG_NS + ' viewBox="0 0 1 1"><g id="loop"><use href="#loop"/></g></svg>', "nested references"),
    ('<svg ' + SVG_NS + ' viewBox="0 0 1 1"><rect id="r" width="1" height="1"/>'
     + '<use href="#r"/>' * (si.MAX_SVG_USES + 1) + '</svg>', "allowed"),
    ('<svg ' + SVG_NS + ' viewBox="0 0 1 1"><rect width="1" height="1"></svg>', "well-formed"),
])
def test_hostile_svg_is_refused(svg, why):
    with pytest.raises(si.ScoreImageError, match=why):
        si.rasterize_svg(svg, 10, 10)


def test_oversized_svg_and_canvas_are_refused():
    huge = f'<svg {SVG_NS} viewBox="0 0 1 1">' + "<g/>" * (si.MAX_SVG_CHARS // 4) + "</svg>"
    with pytest.raises(si.ScoreImageError, match="larger than"):
        si.rasterize_svg(huge, 10, 10)
    # a document claiming a huge size is drawn on the caller's canvas, never its own
    claims = f'<svg {SVG_NS} width="100000000" height="100000000" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>'
    assert si.rasterize_svg(claims, 8, 4).shape == (4, 8)
    with pytest.raises(si.ScoreImageError, match="canvas"):
        si.rasterize_svg(claims, si.MAX_CANVAS_SIDE + 1, 1)
    with pytest.raises(si.ScoreImageError, match="canvas"):
        si.rasterize_svg(claims, 8192, 8192)


def test_resample_columns_keeps_the_ink_and_averages():
    img = np.array([[0.0, 1.0, 2.0, 3.0]])
    np.testing.assert_allclose(resample_columns(img, [0, 2, 4]), [[0.5, 2.5]])
    np.testing.assert_allclose(resample_columns(img, [0.5, 1.5]), [[0.5]])  # half of col 0, half of col 1
    np.testing.assert_allclose(resample_columns(img, [3, 5]), [[1.5]])  # outside counts as zero
    squeezed = resample_columns(img, np.linspace(0, 4, 4))
    assert squeezed.sum() * (4 / 3) == pytest.approx(img.sum())


# ---------------------------------------------------------------------- the view
def test_image_shape_dtype_and_more_notes_give_more_ink():
    short = _fragment([64, 65, 67, 69])
    long = _fragment([64, 65, 67, 69, 71, 72, 71, 69])
    a, t0_a, cps_a = si.score_image(short)
    b, t0_b, cps_b = si.score_image(long)
    assert a.shape == b.shape == (si.IMAGE_HEIGHT, si.IMAGE_WIDTH) and a.dtype == np.uint8
    assert int(b.sum()) > int(a.sum()) * 1.3
    # a quarter is PX_PER_QUARTER columns where it fits: 80 bpm = 16 columns per second
    assert cps_a == cps_b == pytest.approx(si.PX_PER_QUARTER * 80 / 60)
    assert 0 < t0_a == t0_b <= si.MAX_PREFIX_COLUMNS
    # the short one is padded with paper on the right, after its 4 quarters
    end = int(np.ceil(t0_a + 4 * si.PX_PER_QUARTER))
    assert a[:, end + 1:].max() == 0 and a[:, : end].max() > 200
    # the staff lines are where the docstring says (rows 20, 26, 32, 38, 44): ink across the staff
    line_rows = [r for r in range(si.IMAGE_HEIGHT) if a[r, int(t0_a) + 2: end - 4].mean() > 60]
    assert set(line_rows) >= {20, 26, 32, 38, 44} or set(line_rows) >= {19, 25, 31, 37, 43}


def test_a_long_fragment_is_squeezed_to_fit():
    many = _fragment([60 + (i % 8) for i in range(48)])  # 48 quarters: more than fits at 12 per quarter
    img, t0, cps = si.score_image(many)
    assert cps < si.PX_PER_QUARTER * 80 / 60
    assert t0 + 48 * cps * 60 / 80 == pytest.approx(si.IMAGE_WIDTH)
    assert img[:, -8:].max() > 0  # the final barline reaches the right edge


def test_columns_follow_time():
    """Change only the third note (a quarter at 2..3 ql): the images differ only in the columns
    of that quarter (plus the notehead's overhang)."""
    a, t0, _ = si.score_image(_fragment([64, 65, 64, 65, 64, 65, 64, 65]))
    b, _, _ = si.score_image(_fragment([64, 65, 67, 65, 64, 65, 64, 65]))
    cols = np.nonzero((a.astype(int) - b).any(axis=0))[0]
    assert len(cols)
    ppq = si.PX_PER_QUARTER
    assert cols.min() >= np.floor(t0 + 2 * ppq) - 1 and cols.max() <= np.ceil(t0 + 3 * ppq) + 1, (cols, t0)
    # and the changed pitch moved ink up: G4 sits a third above E4 (one staff space = 6 rows)
    rows_a = np.nonzero(a[:, cols].astype(int) > b[:, cols])[0]
    rows_b = np.nonzero(b[:, cols].astype(int) > a[:, cols])[0]
    assert rows_b.mean() < rows_a.mean()


def test_same_fragment_same_bytes():
    fr = _fragment([62, 64, 66, 67, 69], durations=[0.5, 0.5, 1.0, 1.5, 0.5], key="D major", meter="3/4")
    a = si.score_image(fr)
    b = si.score_image(fr)
    assert a[0].tobytes() == b[0].tobytes() and a[1:] == b[1:]


def test_durations_without_notation_are_snapped():
    from crossmodal_core import render

    # a triplet 16th stored rounded (as some corpus works have it): music21 cannot write it
    fr = _fragment([60, 62, 64, 65], durations=[0.164062, 0.167969, 0.667969, 1.0])
    with pytest.raises(render.RenderError, match="inexpressible"):
        render._musicxml(render.fragment_stream(fr))
    img, t0, _ = si.score_image(fr)
    assert img.sum() > 0
    snapped = render.snapped(fr)
    assert [n.duration for n in snapped.notes] == [8 / 48, 8 / 48, 32 / 48, 1.0]
    # the app's engraving (player, thumbnails) takes the same way
    svg, timemap = render.fragment_svg(fr)
    # its timemap gives the notes' own times (what the audio plays), not the snapped ones
    assert len(timemap) == 4 and timemap[1]["onset_s"] == pytest.approx(0.164062 * 60 / 80, abs=1e-6)


def test_events_are_on_the_notes_own_clock_through_bracketless_tuplets():
    """music21's fast export writes triplet 16ths (1/6 quarter) without a tuplet bracket and
    verovio then times them as plain 16ths (0.25): the anchors must use the notes' onsets."""
    from crossmodal_core import render

    durations = [1 / 6, 1 / 6, 1 / 6, 0.5, 1.0, 1.0, 1.0]
    fr = _fragment([64, 65, 64, 65, 64, 65, 64], durations=durations)
    _svg, events, end = render.fragment_staff_svg(fr)
    np.testing.assert_allclose([q for _, q in events], [n.onset for n in fr.notes], atol=1e-9)
    assert end == pytest.approx(4.0)



@pytest.mark.parametrize("lead", [1 / 3, 2 / 3])
def test_a_pickup_in_triplets_keeps_the_notes_on_their_own_clock(lead):
    """A fragment starting 1/3 or 2/3 of a quarter into its bar (a triplet pickup rest, which
    verovio times as a plain value): the notes still sit at their onsets, the first at time 0,
    so the fragment is engraved instead of dropped."""
    from crossmodal_core import render

    fr = _fragment([64, 65, 64, 65, 64], durations=[1.0, 1.0, 0.5, 0.5, 1.0])
    fr.extra["measure_offset_ql"] = lead
    _svg, events, end = render.fragment_staff_svg(fr)
    sounding = sorted(q for _, q in events if q >= 0)
    np.testing.assert_allclose(sounding[:1], [0.0], atol=1e-9)
    assert {round(n.onset, 6) for n in fr.notes} <= {round(q, 6) for q in sounding}
    assert end == pytest.approx(4.0)
    img, t0, _ = si.score_image(fr)
    assert img.sum() > 0 and t0 > 0

# ---------------------------------------------------------------------- segments
def test_segments_are_time_aligned_on_a_hand_made_image():
    # column c holds the time (c - t0) / cols_per_s in tenths of a second: segment k is [k, k+1) s
    t0, cps = 16.0, 20.0
    img = np.zeros((1, 1, si.IMAGE_HEIGHT, si.IMAGE_WIDTH), np.uint8)
    for k in range(10):
        img[0, 0, :, int(t0 + k * cps): int(t0 + (k + 1) * cps)] = 10 * (k + 1)
    edges = np.arange(11, dtype=float)[None]  # seconds
    seq = si.score_image_segments(img, np.array([t0]), np.array([cps]), edges)
    assert seq.shape == (1, 10, si.IMAGE_HEIGHT * si.SEGMENT_COLUMNS) and seq.dtype == np.float32
    for k in range(10):
        np.testing.assert_allclose(seq[0, k], 10 * (k + 1) / 255, atol=1e-6)
    # unequal segments, and the prefix before t0 is in none of them
    img[0, 0, :, : int(t0)] = 255
    edges = np.array([[0, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 10]])
    seq = si.score_image_segments(img, np.array([t0]), np.array([cps]), edges)
    np.testing.assert_allclose(seq[0, 0], 10 / 255, atol=1e-6)
    np.testing.assert_allclose(seq[0, 9].reshape(si.IMAGE_HEIGHT, -1)[:, 0], 90 / 255, atol=1e-6)
    np.testing.assert_allclose(seq[0, 9].reshape(si.IMAGE_HEIGHT, -1)[:, -1], 100 / 255, atol=1e-6)
    with pytest.raises(ValueError, match="edges_s"):
        si.score_image_segments(img, np.array([t0]), np.array([cps]), np.zeros((2, 11)))


# ---------------------------------------------------------------------- rank-4 views in a dataset
def test_a_dataset_holds_image_views_and_flat_models_name_them():
    from crossmodal_core.data.dataset import CrossModalDataset, DatasetError, check_views

    images = np.zeros((3, 1, 4, 8), np.uint8)
    ds = CrossModalDataset(views={"audio": np.zeros((3, 2), np.float32), "score_image": images})
    assert ds.summary()["views"]["score_image"] == [1, 4, 8] and ds.views["score_image"].dtype == np.uint8
    with pytest.raises(DatasetError, match="4-D .n, C, H, W."):
        CrossModalDataset(views={"x": np.zeros((3, 1, 1, 1, 1))})
    with pytest.raises(ValueError, match="image view .* CNN tower"):
        check_views([images, np.zeros((3, 2))])


def test_resample_width_zero_gives_zeros():
    """An image with no columns: every interval is outside it, which counts as zeros (it used
    to raise IndexError)."""
    from crossmodal_core.features.resample import resample_columns, resample_columns_rows

    edges = np.array([-1.0, 0.0, 0.0, 2.5])
    out = resample_columns(np.zeros((3, 0)), edges)
    assert out.shape == (3, 3) and not out.any()
    rows = resample_columns_rows(np.zeros((2, 3, 0), dtype=np.uint8), np.stack([edges, edges]))
    assert rows.shape == (2, 3, 3) and not rows.any()
