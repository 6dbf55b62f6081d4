"""The paper-layout results table (crossmodal_core.tables) and `python -m crossmodal_core report`.

Every exported number is read back and compared with the JSON it came from, and with the
fold values recomputed independently (numpy, ddof=1)."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from crossmodal_core import cli, report, store, tables
from crossmodal_core import evaluate as ev
from crossmodal_core.models import registry

REFERENCE = Path(store.REPO_ROOT) / "assets" / "results"


def _doc(dataset: str, maps: dict[str, list[float]], *, kind: str = "class", directions=("audio->visual",
                                                                                         "visual->audio"),
         label: str = "class", displays: dict[str, str] | None = None, errors=()) -> dict:
    """A class-level results document as evaluate() writes it: per-fold metrics and summaries;
    the second direction's MAP is the first's minus 0.05."""
    subset = "unseen" if kind == "zero-shot" else "test"
    models = {}
    for key, values in maps.items():
        folds = [{"fold": f, "n_train": 10, "n_test": 5, "fit_seconds": 1.0,
                  "metrics": {subset: {d: {"map": m - 0.05 * k, "mrr1": m} for k, d in enumerate(directions)}}}
                 for f, m in enumerate(values)]
        models[key] = {"display": (displays or {}).get(key, key.upper()), "folds": folds, "error": None,
                       "summary": ev._summarise(folds, report.CLASS_METRICS)}
    for key in errors:
        models[key] = {"display": key.upper(), "folds": [], "error": "boom", "summary": None}
    protocol = {"kind": kind, "views": [d.split("->")[0] for d in directions], "label": label, "n_folds": 2,
                "partition": "2 class-balanced folds (seed 0)", "relevance": "same label", "metric": "cosine",
                "n_classes": 10}
    if kind == "zero-shot":
        protocol["zero_shot"] = {"unseen_classes": [5, 6, 9], "seen_classes": [0, 1, 2, 3, 4, 7, 8]}
    return {"dataset": dataset, "dataset_info": {"synthetic": True}, "protocol": protocol,
            "directions": list(directions), "models": models}


def _reference_docs() -> list[dict]:
    docs = report.load_documents({"reference": REFERENCE})
    # the score-image documents are paired runs that also scored MAP by work, so they are MAP tables too
    assert {Path(d["path"]).name for d in docs} == {"synthetic-vegas.json", "synthetic-vegas-zeroshot.json",
                                                   "music21_lyrics.json", "music21_score_image.json",
                                                   "music21_score_image_three_view.json"}, \
        "alignment reports without MAP are not MAP tables"
    return docs


def _expected(docs) -> dict[tuple[str, str, str], tuple[float, float, int]]:
    """(group title, model display, direction label) -> (mean %, std %, n) recomputed from the folds."""
    out = {}
    table = tables.paper_table(docs)
    for group in table.groups:
        doc = next(d["document"] for d in docs if tables.dataset_title(d["document"]) == group.title)
        subset = "unseen" if doc["protocol"]["kind"] == "zero-shot" else "test"
        for rec in doc["models"].values():
            for direction in doc["directions"]:
                vals = [f["metrics"][subset][direction]["map"] for f in rec["folds"]]
                stored = rec["summary"]["metrics"][subset][direction]["map"]
                assert stored["mean"] == pytest.approx(np.mean(vals)) and stored["std"] == pytest.approx(
                    np.std(vals, ddof=1))
                out[(group.title, rec["display"], direction.replace("->", "→"))] = (
                    100 * stored["mean"], 100 * stored["std"], len(vals))
    return out


# ------------------------------------------------------------------ layout
def test_rows_follow_the_poster_order_then_the_registry_then_unknown_names():
    from crossmodal_core.models.registry import MODEL_NAMES

    keys = ["zz-new", "contrastive", "tnn-ccca", "acmr", "cca", "ugaar", "cdcca", "kcca", "ccca"]
    doc = _doc("synthetic-vegas", {k: [0.3, 0.4] for k in keys})
    table = tables.paper_table([doc])
    expected = ["cca", "kcca", "ccca", "cdcca", "acmr", "tnn-ccca"]  # POSTER_ORDER, acmr known or not
    rest = [m for m in MODEL_NAMES if m in keys and m not in report.POSTER_ORDER]
    assert table.models == expected + rest + ["zz-new"]
    assert report.POSTER_ORDER[:6] == ("cca", "kcca", "dcca", "ccca", "ckcca", "cdcca")
    assert report.POSTER_ORDER[-1] == "tnn-ccca"
    assert table.displays[0] == "CCA"


def test_reference_table_layout_titles_and_caption():
    table = tables.paper_table(_reference_docs())
    assert [g.title for g in table.groups] == ["Synthetic VEGAS-like",
                                               "Synthetic VEGAS-like, zero-shot (unseen classes)",
                                               "music21 lyrics (audio↔sheet by work)",
                                               "music21 lyrics (score_image↔audio by work)",
                                               "music21 lyrics (score_image↔lyrics by work)"]
    assert [g.labels for g in table.groups][:4] == [("audio→visual", "visual→audio")] * 2 + [
        ("audio→sheet", "sheet→audio"), ("score_image→audio", "audio→score_image")]  # from the files
    assert len(table.groups[4].labels) == 6  # score image / lyrics / audio, every direction
    assert table.displays[:3] == ["CCA", "KCCA", "DCCA"]
    caption = table.caption
    for part in ("5 class-balanced folds", "same label", "3 of 10 classes (30 %)", "'work'", "cosine",
                 "SYNTHETIC", "ddof=1"):
        assert part in caption, part
    assert "training rows per fold" in caption  # the regeneration's compute budget is stated
    frame = table.to_frame()
    # every registry model is a row: UGAAR from the 3-view score-image file, the rest from the
    # class-level files, where every model but UGAAR (paired only) ran on every file
    assert list(frame.index) == [registry.display_name(m) for m in report.model_order(registry.MODEL_NAMES)]
    class_level = frame[[g.title for g in table.groups[:3]]].drop(index=registry.display_name("ugaar"))
    assert "–" not in class_level.to_string()
    # the score-image files hold the five image-capable models and UGAAR; the rest are dashes
    score_image = frame[table.groups[3].title]
    assert sorted(score_image.index[(score_image != "–").all(axis=1)]) == sorted(
        registry.display_name(m) for m in ("cca", "ccca", "dcca", "tnn-ccca", "contrastive"))
    assert "None" not in frame.to_string() and "nan" not in frame.to_string()


def test_missing_model_is_a_dash_and_one_fold_has_no_std():
    a = _doc("synthetic-vegas", {"cca": [0.4, 0.5], "ccca": [0.8, 0.9]})
    b = _doc("other_set", {"cca": [0.3]}, errors=["kcca"])
    table = tables.paper_table([a, b])
    assert table.models == ["cca", "kcca", "ccca"]
    cells = table.cells()
    assert cells[2][2:] == ["–", "–"] and cells[1] == ["–"] * 4  # C-CCA not run on b; KCCA failed on b
    assert cells[0][2] == "30.00"  # a single fold: the mean alone
    assert cells[0][0] == f"45.00 ± {100 * np.std([0.4, 0.5], ddof=1):.2f}"
    assert "KCCA failed on other set" in table.caption
    assert table.to_latex().count("--") >= 6 and "nan" not in table.to_csv()


def test_best_is_the_column_max_in_every_format():
    docs = _reference_docs()
    table = tables.paper_table(docs)
    best = table.best
    for j in range(len(table.columns)):
        col = table.mean[:, j]
        assert np.flatnonzero(best[:, j]).tolist() == np.flatnonzero(col == np.nanmax(col)).tolist()
    latex_rows = _latex_body(table.to_latex())
    md_rows = [line.split(" | ")[1:] for line in table.to_markdown().splitlines()[2:2 + len(table.models)]]
    for i in range(len(table.models)):
        for j in range(len(table.columns)):
            assert latex_rows[i][j + 1].startswith(r"\textbf{") == best[i, j]
            assert md_rows[i][j].strip(" |").startswith("**") == best[i, j]


# ------------------------------------------------------------------ exports read back
def _latex_body(latex: str) -> list[list[str]]:
    body = latex.split(r"\midrule")[1].split(r"\bottomrule")[0]
    return [line.rstrip(" \\").split(" & ") for line in body.strip().splitlines()]


def test_latex_numbers_equal_the_json():
    docs = _reference_docs()
    expected = _expected(docs)
    table = tables.paper_table(docs)
    latex = table.to_latex()
    assert latex.count(r"\toprule") == latex.count(r"\midrule") == latex.count(r"\bottomrule") == 1
    titles = re.findall(r"\\multicolumn\{(\d)\}\{c\}\{(.*?)\} ?(?:&|\\\\)", latex)
    assert [int(k) for k, _ in titles] == [2, 2, 2, 2, 6]
    header = next(line for line in latex.splitlines() if line.startswith("Model & "))
    # LaTeX escapes the underscores of view names (score\_image)
    directions = [d.replace(r"$\rightarrow$", "→").replace(r"\_", "_") for d in header.rstrip(" \\").split(" & ")[1:]]
    group_of_column = [t.replace(r"$\leftrightarrow$", "↔").replace(r"\_", "_") for k, t in titles for _ in range(int(k))]
    columns = list(zip(group_of_column, directions))
    assert columns == table.columns
    assert r"\caption{" in latex and r"\label{tab:results}" in latex and "$\\pm$" in latex
    seen = 0
    for row in _latex_body(latex):
        model = row[0]
        for (title, direction), text in zip(columns, row[1:]):
            text = re.sub(r"^\\textbf\{(.*)\}$", r"\1", text)
            if (title, model, direction) not in expected:
                assert text == "--"
                continue
            mean, std, n = expected[(title, model, direction)]
            m, s = (float(x) for x in text.split(r" $\pm$ "))
            assert m == round(mean, 2) and s == round(std, 2)
            seen += 1
    n_models = len(registry.MODEL_NAMES) - 1  # every model but UGAAR, in each of the three class-level files
    # + the score-image files: 5 models x 2 directions, and the 3-view UGAAR file's 2 x 6 directions
    assert seen == len(expected) == 3 * 2 * n_models + 5 * 2 + 2 * 6


def test_csv_numbers_equal_the_json():
    docs = _reference_docs()
    expected = _expected(docs)
    rows = list(csv.DictReader(io.StringIO(tables.paper_table(docs).to_csv())))
    assert [r["display"] for r in rows][:4] == ["CCA", "KCCA", "DCCA", "C-CCA"]
    seen = 0
    for r in rows:
        for key in r:
            if key.endswith(" | mean"):
                title, direction, _ = key.split(" | ")
                prefix = f"{title} | {direction} | "
                if (title, r["display"], direction) not in expected:
                    assert r[key] == "" and r[prefix + "n"] == "0"
                    continue
                mean, std, n = expected[(title, r["display"], direction)]
                assert float(r[key]) == pytest.approx(mean, rel=1e-12)
                assert float(r[prefix + "std"]) == pytest.approx(std, rel=1e-12)
                assert int(r[prefix + "n"]) == n == 5
                seen += 1
    assert seen == len(expected)


def test_hostile_fields_are_missing_not_crashes_and_text_is_escaped():
    doc = _doc("synthetic-vegas", {"cca": [0.4, 0.5], "ccca": [0.6, 0.7]}, displays={"cca": "A&B_{x}%"})
    doc["models"]["ccca"]["summary"]["metrics"]["test"]["audio->visual"]["map"] = {"mean": "0.9", "std": None}
    doc["models"]["bad"] = ["not", "a", "record"]
    doc["models"]["ugly"] = {"display": {"x": 1}, "summary": {"metrics": 3}}
    table = tables.paper_table([doc, {"protocol": "nope"}, {"dataset": 1}])
    assert table.cells()[table.models.index("ccca")][0] == "–"
    latex = table.to_latex()
    assert r"A\&B\_\{x\}\%" in latex and "A&B" not in latex.split(r"\midrule")[1]
    assert r"A&B\_\{x\}" not in table.to_markdown()
    assert tables.paper_table([]).empty and tables.paper_table([{"protocol": {}}]).empty


def test_images_are_not_blank():
    table = tables.paper_table(_reference_docs())
    png = table.to_image("png", dpi=100)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    assert pixels.shape[0] > 150 and pixels.shape[1] > 600
    dark = (pixels.mean(axis=2) < 0.5).mean()
    assert 0.01 < dark < 0.5  # text and rules on a white page
    svg = table.to_image("svg")
    root = ET.fromstring(svg)
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "TNN-C-CCA" in texts and "Synthetic VEGAS-like" in texts
    assert any(re.fullmatch(r"\d+\.\d\d ± \d+\.\d\d", t) for t in texts)
    assert table.to_image("pdf")[:5] == b"%PDF-"
    with pytest.raises(ValueError):
        table.export("docx")


# ------------------------------------------------------------------ command line
def test_cli_report_writes_every_format(tmp_path, capsys):
    results = tmp_path / "res"
    report.write_results(_doc("synthetic-vegas", {"cca": [0.4, 0.5], "ccca": [0.8, 0.9]}), results / "a.json")
    report.write_results(_doc("music21_lyrics", {"cca": [0.2, 0.25]}, label="work",
                              directions=("audio->sheet", "sheet->audio")), results / "b.json")
    assert cli.main(["report", "--results", str(results)]) == 0
    text = capsys.readouterr().out
    assert "Synthetic VEGAS-like" in text and "audio→sheet" in text and "*" in text
    for fmt, suffix in [("csv", ".csv"), ("latex", ".tex"), ("markdown", ".md"), ("text", ".txt"),
                        ("png", ".png"), ("svg", ".svg"), ("pdf", ".pdf")]:
        out = tmp_path / f"table{suffix}"
        assert cli.main(["report", "--results", str(results / "a.json"), str(results / "b.json"),
                         "--out", str(out)]) == 0, fmt
        data = out.read_bytes()
        assert data, fmt
        if fmt in ("csv", "latex", "markdown", "text"):
            assert data == tables.paper_table(report.load_documents({"": results})).export(fmt), fmt
    assert (tmp_path / "table.csv").read_text().startswith("model,display,")
    assert r"\toprule" in (tmp_path / "table.tex").read_text()
    assert (tmp_path / "table.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["report", "--results", str(results), "--format", "latex"]) == 0
    assert r"\multicolumn{2}{c}{Synthetic VEGAS-like}" in capsys.readouterr().out


def test_cli_report_refuses_bad_inputs_and_committed_files(tmp_path, monkeypatch, capsys):
    assets = tmp_path / "assets"
    doc = _doc("synthetic-vegas", {"cca": [0.4, 0.5]})
    report.write_results(doc, assets / "results" / "a.json")
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(assets))
    committed = assets / "results" / "table.tex"
    committed.write_text("keep me")
    assert cli.main(["report", "--out", str(committed)]) == 2
    assert committed.read_text() == "keep me" and "--force" in capsys.readouterr().err
    assert cli.main(["report", "--out", str(committed), "--force"]) == 0
    assert committed.read_text().startswith(r"\begin{table}")
    assert cli.main(["report", "--out", str(assets / "results" / "a.json"), "--format", "csv", "--force"]) == 2
    (tmp_path / "broken.json").write_text("{nope")
    (tmp_path / "paired.json").write_text(json.dumps({"protocol": {"kind": "paired"}, "models": {}}))
    for bad in ("broken.json", "paired.json", "missing.json"):
        assert cli.main(["report", "--results", str(tmp_path / bad)]) == 2, bad
        err = capsys.readouterr().err
        assert bad in err and "Traceback" not in err
    assert cli.main(["report", "--format", "png"]) == 2  # an image needs --out
    assert cli.main(["report", "--out", str(tmp_path / "t.docx")]) == 2


def test_app_shows_the_hashing_models_hamming_map_and_the_paired_recall_at_k(tmp_path, monkeypatch):
    """The home page's expander: Hamming MAP rows for the hashing models of the reference files,
    equal to the JSON's summaries, and the paired file's R@1/5/10/20 (R@20: deep attention)."""
    from crossmodal_core import appdata

    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path))  # no user results
    frame = appdata.hamming_table()
    assert set(frame["Model"]) == {"UGACH", "AGAH"}
    doc = json.loads((REFERENCE / "synthetic-vegas.json").read_text(encoding="utf-8"))
    ham = doc["models"]["agah"]["summary"]["metrics"]["test"]["audio->visual"]["map_hamming"]
    row = frame[(frame["Results"] == "Synthetic VEGAS-like") & (frame["Model"] == "AGAH")].iloc[0]
    assert row["audio→visual Hamming"] == report.cell(ham, 100)
    paired = dict(appdata.paired_tables())
    (title, table), = [(t, f) for t, f in paired.items() if "synthetic-vegas-paired.json" in t]
    pdoc = json.loads((REFERENCE / "synthetic-vegas-paired.json").read_text(encoding="utf-8"))
    r20 = pdoc["models"]["attention"]["summary"]["metrics"]["test"]["audio->visual"]["R@20"]["mean"]
    assert table.loc[("Deep attention", "audio→visual"), "R@20"] == pytest.approx(100 * r20, abs=1e-3)
    assert np.isnan(table.loc[("CCA", "audio→visual"), "R@20"])  # CCA reports R@1/5/10 only


def test_app_expander_skips_malformed_user_results_instead_of_crashing(tmp_path, monkeypatch):
    """A hand-edited or cut results file among the user's own runs must not take the home page
    down: the Hamming and paired tables leave that file out and still show the reference ones."""
    from crossmodal_core import appdata

    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path))
    folder = store.user_results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad-class.json").write_text(json.dumps({
        "dataset": "x", "protocol": {"kind": "class"},
        "models": {"ugach": ["not", "a", "record"], "agah": {"display": "AGAH", "summary": {"metrics": 3}},
                   "ckcca": {"summary": {"metrics": {"test": {"a->b": 7}}}}}}), encoding="utf-8")
    (folder / "bad-paired.json").write_text(json.dumps({
        "dataset": "x", "protocol": {"kind": "paired"},
        "models": {"cca": "garbage", "dcca": {"display": "DCCA", "summary": {"metrics": {"test": {
            "a->b": {"R@1": {"mean": 0.5}}}}}}}}), encoding="utf-8")
    frame = appdata.hamming_table()
    assert set(frame["Model"]) == {"UGACH", "AGAH"}
    assert not frame["Results"].str.contains("yours").any()
    titles = [t for t, _ in appdata.paired_tables()]
    assert any("synthetic-vegas-paired.json" in t for t in titles)
    assert not any("bad-paired.json" in t for t in titles)
