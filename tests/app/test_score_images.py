"""Score-image thumbnails: the PNG round-trips the stored raster (decoded independently with
Pillow), and the modality layer pairs audio with the score image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from crossmodal_core.appdata import images


def engraving_like(h: int = 48, w: int = 256, seed: int = 0) -> np.ndarray:
    """A raster with the contract's conventions: ink = 255 on paper = 0, anti-aliased grey
    edges, five staff lines, some note heads, blank right padding."""
    rng = np.random.default_rng(seed)
    a = np.zeros((h, w), dtype=np.uint8)
    for y in range(10, 35, 6):
        a[y, 4:180] = 255
    for x in rng.integers(8, 170, 12):
        y = int(rng.integers(8, 36))
        a[y:y + 4, x:x + 5] = rng.integers(60, 256, (4, 5), dtype=np.uint8)
    return a


def test_png_round_trips_the_raster_exactly():
    a = engraving_like()
    png = images.raster_png(a)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as img:  # decoded by Pillow itself, not by our helper
        assert img.mode == "L" and img.size == (a.shape[1], a.shape[0])
        shown = np.asarray(img)
    # shown as a score looks: black ink (0) on white paper (255)
    np.testing.assert_array_equal(shown, 255 - a)
    np.testing.assert_array_equal(images.decode_png(png), a)


def test_trim_cuts_only_the_blank_padding():
    a = engraving_like()
    last_ink = int(np.nonzero(a.max(axis=0))[0][-1])
    trimmed = images.decode_png(images.raster_png(a, trim=True))
    assert trimmed.shape == (a.shape[0], last_ink + 1 + 6)
    np.testing.assert_array_equal(trimmed, a[:, :last_ink + 7])
    blank = np.zeros((8, 20), dtype=np.uint8)  # nothing to trim to: the whole raster stays
    np.testing.assert_array_equal(images.decode_png(images.raster_png(blank, trim=True)), blank)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((1, 4, 4), np.uint8),
                                 np.zeros((0, 4), np.uint8)])
def test_png_refuses_what_is_not_a_raster(bad):
    with pytest.raises(ValueError, match="raster"):
        images.raster_png(bad)


# ---------------------------------------------------------------- the modality layer
def test_audio_pairs_with_the_score_image_and_each_model_reads_what_it_can():
    from crossmodal_core import appdata
    from crossmodal_core.models import trained
    from tests.app.conftest import make_score_image_set

    ds = make_score_image_set()
    assert {v: trained.modality_of(ds, v) for v in ds.view_names} == {
        "audio": "audio", "audio_mel": "audio", "score_image": "score_image", "score_hog": "score_image",
        "audio_mel_pix": "audio"}
    assert trained.modality_inputs(ds, "audio") == {"flat": "audio", "image": "audio_mel"}
    assert trained.modalities(ds) == ["audio", "score_image"]
    assert appdata.view_pairs(ds)[0] == ("audio", "score_image")
    # linear models read the flat image feature, deep ones the raster and the log-mel (a CNN each)
    assert trained.model_views(ds, "ccca", ("audio", "score_image")) == ("audio", "score_hog")
    assert trained.model_views(ds, "tnn-ccca", ("audio", "score_image")) == ("audio_mel", "score_image")
    assert trained.model_params(ds, "tnn-ccca", ("audio_mel", "score_image"))["order"] == "network-first"
    # either way the embeddings are stored under the modalities, so the app lists both for the pair
    assert trained.embedding_names(ds, ("audio", "score_hog")) == ("audio", "score_image")
    assert trained.embedding_names(ds, ("audio_mel", "score_image")) == ("audio", "score_image")
    assert trained.embedding_names(ds, ("audio", "audio_mel")) == ("audio", "audio_mel")  # no clash


def test_a_dataset_without_image_views_keeps_its_pairs():
    from crossmodal_core import appdata
    from crossmodal_core.data.synthetic import make_synthetic_av
    from crossmodal_core.models import trained

    ds = make_synthetic_av(n_train=40, n_test=20, n_classes=3, dims=(6, 8), seed=0)
    assert trained.modalities(ds) == trained.flat_views(ds) == ["audio", "visual"]
    assert appdata.view_pairs(ds) == [("audio", "visual")]
    assert trained.model_views(ds, "tnn-ccca", ("audio", "visual")) == ("audio", "visual")
    assert "order" not in trained.model_params(ds, "tnn-ccca", ("audio", "visual"))


def test_a_linear_model_needs_a_flat_image_feature():
    from crossmodal_core.models import trained
    from tests.app.conftest import make_score_image_set

    ds = make_score_image_set()
    del ds.views["score_hog"]
    with pytest.raises(ValueError, match="flat .* feature view of 'score_image'"):
        trained.model_views(ds, "ccca", ("audio", "score_image"))


# ---------------------------------------------------------------- the pages (AppTest)
@pytest.fixture
def sent_media(monkeypatch):
    """Every media file the AppTest runs store: ``{file id: (bytes, mimetype)}``."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    files: dict[str, tuple[bytes, str]] = {}

    class Recording(MemoryMediaFileStorage):
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
            file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            files[file_id] = (bytes(path_or_data), mimetype)
            return file_id

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recording)
    return files


def shown_images(at, files) -> list[tuple[str, np.ndarray]]:
    """``(caption, raster)`` of every st.image on the page, decoded from the PNG it sent."""
    out = []
    for el in at.get("image"):
        for img in el.proto.imgs:
            file_id = img.url.rsplit("/", 1)[-1].split(".")[0]
            data, mime = files[file_id]
            assert mime == "image/png", f"{img.caption!r} was sent as {mime}"
            out.append((img.caption, images.decode_png(data)))
    return out


def score_set_id() -> str:
    from crossmodal_core import appdata
    from tests.app.conftest import SCORE_IMAGE_FILE

    return next(e.id for e in appdata.list_datasets() if e.kind == "file" and e.path.name == SCORE_IMAGE_FILE)


def test_explorer_shows_audio_and_score_image_panels_and_the_selected_rasters(app_assets, sent_media):
    from crossmodal_core import appdata
    from tests.app.test_pages import plotly_specs, run_page

    dataset_id = score_set_id()
    at = run_page("app_pages/explorer.py", dataset_id, selection=[2, 7, 40])
    assert at.selectbox(key="pair").value == ("audio", "score_image")
    titles = [spec["layout"]["title"]["text"].split("<br>")[0] for spec in plotly_specs(at)]
    assert titles == ["Original features", "C-CCA", "TNN-C-CCA"]
    for spec in plotly_specs(at):  # both modalities in every panel; the hover says where the image is
        names = {t.get("name", "") for t in spec["data"]}
        assert {"audio (marker)", "score_image (marker)"} <= names
        assert all("click: its score image" in t["hovertemplate"] for t in spec["data"] if "customdata" in t)
    app = appdata.load_dataset(dataset_id)
    shown = shown_images(at, sent_media)
    texts = appdata.item_text(app, [2, 7, 40], "work")
    assert [c for c, _ in shown] == texts
    for (_, image), row in zip(shown, [2, 7, 40]):
        np.testing.assert_array_equal(image, app.dataset.views["score_image"][row, 0])


def test_retrieval_shows_the_score_images_of_the_top_k(app_assets, sent_media):
    from crossmodal_core import appdata
    from tests.app.test_pages import run_page

    dataset_id = score_set_id()
    at = run_page("app_pages/retrieval.py", dataset_id, retrieval_k=4,
                  retrieval_direction=("audio", "score_image"))
    app = appdata.load_dataset(dataset_id)
    model = next(m for m in appdata.list_trained(app, "work") if m.id == at.selectbox(key="retrieval_model").value)
    rv = appdata.retrieval_view(app, model, "audio", "score_image", "work")
    query_pos = at.selectbox(key="retrieval_query_list").value
    q = appdata.query_results(rv, query_pos, 4)
    shown = [image for _, image in shown_images(at, sent_media)]
    # the query's own score image (in the "true pair" expander), then the top 4 in rank order
    expected = [int(rv.rows[query_pos])] + [int(r) for r in q["rows"]]
    assert len(shown) == len(expected) == 5
    for image, row in zip(shown, expected):
        np.testing.assert_array_equal(image, app.dataset.views["score_image"][row, 0])
    marks = " ".join(m.value for m in at.markdown)
    assert marks.count("#") >= 4 and ("relevant" in marks)
    if q["is_pair"].any():
        assert "true pair" in marks


def test_the_pages_without_a_score_image_view_show_none(app_assets, sent_media):
    from tests.app.test_pages import plotly_specs, run_page, tiny_ids

    at = run_page("app_pages/explorer.py", tiny_ids()[0], selection=[1, 2])
    assert not at.get("image")
    assert not any("score image" in t.get("hovertemplate", "") for spec in plotly_specs(at) for t in spec["data"])
    at = run_page("app_pages/retrieval.py", tiny_ids()[0])
    assert not at.get("image")


def test_retrieval_figure_draws_the_stored_rasters(app_assets):
    from crossmodal_core import appdata, figures

    app = appdata.load_dataset(score_set_id())
    model = appdata.find_trained(app, "ccca", ("audio", "score_image"), "work")
    rv = appdata.retrieval_view(app, model, "audio", "score_image", "work")
    fig = figures.retrieval_figure(app, rv, 3, 4)
    q = appdata.query_results(rv, 3, 4)
    assert [ax.get_gid().split("-")[0] for ax in fig.axes] == ["query"] + ["result"] * 4
    for ax, row in zip(fig.axes[1:], q["rows"]):  # black ink on white: 255 - the stored raster
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()),
                                      255 - app.dataset.views["score_image"][int(row), 0])
        assert "score_image (16 x 64 raster)" in " ".join(ax.get_xlabel().split())
    assert "feature vector" in fig.axes[0].get_xlabel()  # the audio query of a feature file: no media


@pytest.mark.slow  # engraves and synthesises a phrase of the real dataset: ~65 s on loaded cores
def test_alignment_shows_the_score_image_of_the_selected_phrase(app_assets, sent_media):
    from crossmodal_core import appdata
    from tests.app.test_pages import music_or_skip, run_page

    music = music_or_skip()
    app = appdata.load_dataset(music)
    if appdata.score_image_view(app) is None:
        pytest.skip("this music dataset has no score_image view")
    at = run_page("app_pages/alignment.py", music)
    work = at.selectbox(key="alignment_work").value
    rows = appdata.works(app)[work]
    pick = 1
    at.radio(key=f"alignment_phrase_{work}").set_value(pick).run()
    assert not at.exception
    shown = shown_images(at, sent_media)
    assert len(shown) == 1 and "score_image" in shown[0][0]
    np.testing.assert_array_equal(shown[0][1], app.dataset.views["score_image"][rows[pick], 0])


def test_prepare_trains_the_score_image_pair_and_the_first_flat_pair():
    from crossmodal_core.cli import prepare_pairs
    from crossmodal_core.data.synthetic import make_synthetic_av
    from tests.app.conftest import make_score_image_set

    ds = make_score_image_set()
    ds.views["lyrics"] = ds.views["audio"][:, :5].copy()  # a second flat modality
    assert prepare_pairs(ds) == [("audio", "score_image"), ("lyrics", "audio")]
    assert prepare_pairs(make_synthetic_av(n_train=40, n_test=20, n_classes=3, dims=(6, 8))) == [("audio", "visual")]
