"""Write the notebooks of this folder from the cell sources below (outputs stripped).

The .ipynb files are generated so that their diffs stay small and reviewable: edit the cells
here, then run ``python notebooks/build_notebooks.py``. ``--check`` exits 1 when a committed
notebook differs from what this script would write (used by ``tests/test_notebooks.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

PARAMETERS = '''\
# Parameters (papermill-style: this cell is tagged "parameters").
# QUICK shrinks data, folds and epochs so the notebook runs in about a minute; the test
# suite sets CROSSMODAL_NOTEBOOK_QUICK=1. The default (QUICK = False) is the full run.
import os

QUICK = os.environ.get("CROSSMODAL_NOTEBOOK_QUICK", "0") == "1"
SEED = 0'''


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    return cell


# ====================================================================== 01 results table
RESULTS_TABLE = [
    md('''
# 01 · Results table (poster layout)

Reproduces the results tables of the poster from the library, through the same code path as

```bash
python -m crossmodal_core evaluate --data synthetic-vegas --models cca,kcca,ccca,ckcca,dcca,cdcca,tnn-ccca --folds 5
python -m crossmodal_core evaluate --data music21 --models ugaar,cca --paired
```

(`crossmodal_core.evaluate.evaluate` / `evaluate_paired` for the protocols, then
`crossmodal_core.report` for the files and tables: `write_results`, `format_table`, `paired_frame`;
the paper-layout table is `crossmodal_core.tables.paper_table`, the one function behind
`python -m crossmodal_core report` and the app's home page, with its CSV / LaTeX / PNG exports).

**Protocol (class-level retrieval, audio ↔ visual).**
- A query of one modality ranks *every* test item of the other modality by cosine similarity.
- AP of one query = (sum of the precision at each relevant rank) / **R**, where R is the number of
  *all* relevant items (same class) in the gallery, not only those retrieved in a top-k cut-off.
  MAP = mean AP over queries, reported per direction (a→v, v→a).
- **Folds**: 5 class-balanced folds; each fold is tested once by a model fitted on the other four.
  The table shows mean ± sample std (`ddof=1`) over folds, the one convention of
  `crossmodal_core.report.summarise`. Deep models get 10 % of their *training* rows
  as validation; test rows are used for scoring only.
- **Zero-shot**: classes are split into seen and unseen; models are fitted on seen classes only
  (the evaluator checks before every fit that no unseen label reaches training) and MAP is
  reported on the unseen classes.

**Protocol (instance-level, sheet / lyrics / audio).** The only relevant item of a query is its
own pair. Recall@1/5/10, MRR and median rank in all six directions; the music dataset's folds
are grouped by work so that no work lies on both sides.

⚠️ The audio-visual part runs on **synthetic** VEGAS-shaped features
(`crossmodal_core.data.synthetic.make_synthetic_av`: 10 classes, 128-d "audio", 1024-d
"visual"), because the VEGAS features are not redistributable. The numbers are *not* the
paper's VEGAS numbers; load your own feature file with `crossmodal_core.data.io.load_dataset`
to reproduce those.
'''),
    code(PARAMETERS, tags=["parameters"]),
    code('''
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from crossmodal_core import evaluate as ev
from crossmodal_core import report, store, tables
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.data import catalog

# Fresh results go to the cache (or CROSSMODAL_NOTEBOOK_OUT), never over the committed
# assets/results/*.json, which hold the full run.
OUT_DIR = Path(os.environ.get("CROSSMODAL_NOTEBOOK_OUT", store.cache_dir() / "notebooks"))
OUT_DIR.mkdir(parents=True, exist_ok=True)
warnings.filterwarnings("ignore", message="IProgress not found")  # no ipywidgets: text progress bars

if QUICK:
    SYNTHETIC_SIZE = dict(n_train=3000, n_test=750)
    N_FOLDS = 2
    CLASS_MODELS = ["cca", "ccca", "tnn-ccca"]
    CLASS_PARAMS = {"tnn-ccca": {"epochs": 2, "progress": False}}
    ZERO_SHOT_MODELS = ["cca", "ccca"]
    PAIRED_MODELS = ["ugaar", "cca"]
    PAIRED_PARAMS = {"ugaar": {"epochs": 3, "progress": False}}
    PAIRED_LIMIT_TRAIN = 2000
else:
    SYNTHETIC_SIZE = dict(n_train=22483, n_test=5620)  # VEGAS' sizes
    N_FOLDS = 5
    CLASS_MODELS = ["cca", "kcca", "ccca", "ckcca", "dcca", "cdcca", "tnn-ccca"]
    CLASS_PARAMS = {m: {"progress": False} for m in ("dcca", "cdcca", "tnn-ccca")}
    ZERO_SHOT_MODELS = ["cca", "ccca", "tnn-ccca"]
    PAIRED_MODELS = ["ugaar", "cca"]
    PAIRED_PARAMS = {"ugaar": {"progress": False}}
    PAIRED_LIMIT_TRAIN = None
print(f"QUICK={QUICK}: {N_FOLDS} folds, models {CLASS_MODELS}, results -> {OUT_DIR}")
'''),
    md('''
## 1 · Audio ↔ visual MAP on the synthetic VEGAS-shaped set (SYNTHETIC)
'''),
    code('''
synthetic = make_synthetic_av(**SYNTHETIC_SIZE, seed=SEED)
assert synthetic.is_synthetic
print(synthetic.summary())
'''),
    code('''
fresh = {}
fresh["class"] = ev.evaluate(synthetic, CLASS_MODELS, n_folds=N_FOLDS, seed=SEED, model_params=CLASS_PARAMS)
report.write_results(fresh["class"], OUT_DIR / f"{synthetic.name}.json")
print(report.format_table(fresh["class"]))
'''),
    code('''
# the paper's layout (rows in the poster's order, best in bold): tables.paper_table, as the app shows it
tables.paper_table([fresh["class"]]).styled()
'''),
    md('''
### Zero-shot (unseen classes)

30 % of the classes are held out of training; MAP is measured among the test items of the
unseen classes (a model that only memorised the seen classes gets no credit there).
'''),
    code('''
fresh["zero-shot"] = ev.evaluate(synthetic, ZERO_SHOT_MODELS, n_folds=N_FOLDS, seed=SEED,
                                 unseen_fraction=0.3, model_params=CLASS_PARAMS)
report.write_results(fresh["zero-shot"], OUT_DIR / f"{synthetic.name}-zeroshot.json")
print("unseen classes:", fresh["zero-shot"]["protocol"]["zero_shot"]["unseen_class_names"])
'''),
    md('''
### The poster table of the fresh runs

Both protocols side by side, exported as `python -m crossmodal_core report --results ... --out ...`
would write them (CSV with mean / std / n per column, booktabs LaTeX, PNG); "–" marks a model
that was not run in the zero-shot protocol.
'''),
    code('''
poster = tables.paper_table([fresh["class"], fresh["zero-shot"]])
for fmt, suffix in (("csv", ".csv"), ("latex", ".tex"), ("png", ".png")):
    store.atomic_write_bytes(OUT_DIR / f"poster_table{suffix}", poster.export(fmt))
print(poster.to_text())
poster.styled()
'''),
    md('''
## 2 · Sheet / lyrics / audio on the embedded music dataset (real data)

`assets/datasets/music21_lyrics`: sung phrases of the music21 corpus with their score, lyrics
and synthesised audio. UGAAR (one shared space for the three views) against linear CCA fitted
on each pair of views.
'''),
    code('''
music = catalog.open_dataset("music21").dataset  # the same resolver as `--data music21` and the app
print(music.summary())
fresh["paired"] = ev.evaluate_paired(music, PAIRED_MODELS, views=["sheet", "lyrics", "audio"],
                                     n_folds=2 if QUICK else None, seed=SEED,
                                     limit_train=PAIRED_LIMIT_TRAIN, model_params=PAIRED_PARAMS)
report.write_results(fresh["paired"], OUT_DIR / f"{music.name}-paired.json")
print(report.format_table(fresh["paired"]))
'''),
    code('''
paired = report.paired_frame(fresh["paired"])
paired.to_csv(OUT_DIR / "paired_table.csv")
paired
'''),
    md('''
## 3 · Stored results of the full run (`assets/results/*.json`)

Written by the full evaluation (`python -m crossmodal_core evaluate ...` and
`crossmodal_core.alignment.run_alignment_evaluation`). Shown when present. First the table of
the app's home page and of `python -m crossmodal_core report` (`report.load_documents` +
`tables.paper_table`: MAP over folds, one column group per results file; your own runs in the
cache, if any, are labelled `[yours]`), then each document.
'''),
    code('''
display(tables.paper_table(report.load_documents()).styled())

stored = {}
for path in sorted(store.results_dir().glob("*.json")):
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        warnings.warn(f"{path}: not JSON ({exc})")
        continue
    stored[path.name] = doc
    print(f"==== {path.relative_to(store.assets_dir().parent)}")
    if "protocol" in doc and "models" in doc:  # evaluate / evaluate_paired output
        print(report.format_table(doc))
    elif "table" in doc:  # alignment.run_alignment_evaluation output
        print(doc["table"])
    else:
        print("(unknown layout; keys:", sorted(doc), ")")
    print()
if not stored:
    print(f"no stored results under {store.results_dir()} yet")
'''),
    md('''
### Fresh vs stored

Same dataset, protocol kind and model: the fresh mean next to the stored one. In QUICK mode the
data, folds and epochs are smaller, so differences are expected; in the full run (same seed,
same code) they should agree to within the fold std.
'''),
    code('''
def summary_means(doc: dict) -> tuple[str | None, dict]:
    """(protocol kind, {(model, subset, direction, metric): (mean, std)}) of a results document.

    Reads both layouts: ``evaluate`` / ``evaluate_paired`` output, and the alignment report of
    ``alignment.run_alignment_evaluation`` (paired; its "CCA-on-pairs" is the paired CCA row).
    Both spell the metrics the same way (``map``; ``R@1``, ``MRR`` ...) and both std are the
    sample std over folds.
    """
    out = {}
    if isinstance(doc.get("protocol"), dict):  # evaluate / evaluate_paired
        for rec in doc.get("models", {}).values():
            for subset, dirs in (rec.get("summary") or {}).get("metrics", {}).items():
                for direction, vals in dirs.items():
                    for metric in ("map", "R@1", "MRR"):
                        if metric in vals:
                            out[(rec["display"], subset, direction, metric)] = (vals[metric]["mean"], vals[metric]["std"])
        return doc["protocol"].get("kind"), out
    if "methods" in doc:  # alignment report
        names = {"CCA-on-pairs": "CCA"}
        for method, rec in doc["methods"].items():
            for direction, vals in rec.get("mean", {}).items():
                for metric in ("R@1", "MRR"):
                    if direction != "mean" and metric in vals:
                        std = rec.get("std", {}).get(direction, {}).get(metric, float("nan"))
                        out[(names.get(method, method), "test", direction, metric)] = (vals[metric], std)
        return "paired", out
    return None, out


comparison = []
for results in fresh.values():
    kind, new = summary_means(results)
    for name, doc in stored.items():
        old_kind, old = summary_means(doc)
        if doc.get("dataset") != results["dataset"] or old_kind != kind:
            continue
        for k, (mean, std) in new.items():
            if k in old:
                comparison.append({"file": name, "model": k[0], "subset": k[1], "direction": k[2], "metric": k[3],
                                   "fresh": mean, "stored": old[k][0], "stored std": old[k][1],
                                   "difference": mean - old[k][0]})
comparison = pd.DataFrame(comparison)
if comparison.empty:
    print("nothing to compare: no stored result matches a fresh one (dataset + protocol)")
else:
    comparison["within 2 std"] = comparison["difference"].abs() <= 2 * comparison["stored std"] + 1e-9
    display(comparison.round(4))
'''),
]


# ====================================================================== 02 poster figures
POSTER_FIGURES = [
    md('''
# 02 · Poster figures

Figures of the poster, computed from the library and saved as PNG (300 dpi) and SVG under
`notebooks/figures/` (git-ignored; set `CROSSMODAL_NOTEBOOK_FIGURES` to write elsewhere):

1. **Embedding maps** side by side: original features, C-CCA and TNN-C-CCA, both modalities
   (marker = modality, colour = class), via `crossmodal_core.projection` (PCA in QUICK mode,
   UMAP otherwise), drawn by `crossmodal_core.figures.poster_figure`, the function behind the
   app's "Poster figure" download and `python -m crossmodal_core figure poster`. Original audio
   and visual features have different widths and share no axes, so they are mapped separately
   and placed side by side; the shared spaces are mapped jointly, so an audio point lands near
   the visual points of its class only if the model put it there.
2. **Precision-recall curves** per model and direction (11-point interpolated, averaged over
   queries; relevance = same class, R = all relevant items in the gallery).
3. **Per-class AP** (audio → visual) per model.
4. **Segment similarity** of one work of the music dataset: sheet / lyrics / audio fragments
   in UGAAR's shared space (`crossmodal_core.alignment.segment_similarity`).
5. **Visualised retrieval results**: a score query of that work and its top-5 audio results
   (log-mel thumbnails), framed green when relevant (same work), red when not, by
   `crossmodal_core.figures.retrieval_figure` (the retrieval page's download, and
   `python -m crossmodal_core figure retrieval`).

⚠️ Figures 1-3 use the **synthetic** VEGAS-shaped features (`make_synthetic_av`), clearly not the
paper's VEGAS data. Figures 4-5 use the real music21 dataset. Models are fitted on the training
split only and every figure shows test items.
'''),
    code(PARAMETERS, tags=["parameters"]),
    code('''
from pathlib import Path

import warnings

import matplotlib.pyplot as plt
import numpy as np

from crossmodal_core import alignment, appdata, figures, metrics, projection, store
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.retrieval import ScoredDirection
from crossmodal_core.models.registry import make_model

FIG_DIR = Path(os.environ.get("CROSSMODAL_NOTEBOOK_FIGURES", store.REPO_ROOT / "notebooks" / "figures"))
FIG_DIR.mkdir(parents=True, exist_ok=True)
METHOD = "pca" if QUICK else "umap"
SYNTHETIC_SIZE = dict(n_train=3000, n_test=750) if QUICK else dict(n_train=22483, n_test=5620)
TNN_PARAMS = {"epochs": 2, "progress": False} if QUICK else {"progress": False}
UGAAR_PARAMS = {"epochs": 3, "progress": False} if QUICK else {"progress": False}
UGAAR_LIMIT_TRAIN = 2000 if QUICK else None
warnings.filterwarnings("ignore", message="IProgress not found")  # no ipywidgets: text progress bars
plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "font.size": 9})


def save(fig, name: str) -> None:
    """PNG (300 dpi) and SVG side by side, written as the app and the CLI write them."""
    for fmt in ("png", "svg"):
        figures.save_figure(fig, FIG_DIR / f"{name}.{fmt}")
    print("saved", FIG_DIR / f"{name}.png", "and .svg")
'''),
    md('''
## Models on the synthetic set (fitted on the training split)
'''),
    code('''
data = make_synthetic_av(**SYNTHETIC_SIZE, seed=SEED)
assert data.is_synthetic
train, test = data.subset(data.split == "train"), data.subset(data.split == "test")
VIEWS = ["audio", "visual"]
y_train, y_test = train.label("class"), test.label("class")
class_names = list(test.class_names["class"])

n_components = len(class_names) - 1  # cluster-CCA has at most classes - 1 useful directions
models = {"CCA": make_model("cca", n_components=n_components),
          "C-CCA": make_model("ccca", n_components=n_components),
          "TNN-C-CCA": make_model("tnn-ccca", n_components=n_components, **TNN_PARAMS)}
embeddings, scored = {}, {}
for name, model in models.items():
    supervised = name != "CCA"
    model.fit(train.pair_views(VIEWS), y_train if supervised else None)
    embeddings[name] = za, zv = model.transform(test.pair_views(VIEWS))
    # each direction scored once: MAP, per-class AP and the PR curve below all read these
    scored[(name, "a→v")] = ScoredDirection(za, zv, y_test, y_test, pr_points=11)
    scored[(name, "v→a")] = ScoredDirection(zv, za, y_test, y_test, pr_points=11)
    a2v, v2a = (scored[(name, d)].mean_average_precision() for d in ("a→v", "v→a"))
    print(f"{name:10s} MAP a→v {100 * a2v:5.2f}  v→a {100 * v2a:5.2f}   (synthetic test split)")
'''),
    md('''
## 1 · Embedding maps: original features vs C-CCA vs TNN-C-CCA
'''),
    code('''
maps = {"Original features": projection.compute_projection(test.pair_views(VIEWS), METHOD, labels=y_test,
                                                            joint=False, params={"random_state": SEED})}
for name in ("C-CCA", "TNN-C-CCA"):
    maps[name] = projection.compute_projection(embeddings[name], METHOD, labels=y_test, joint=True,
                                               params={"random_state": SEED})
# the explorer's panel records; rows index the test items here, so the labels are the test labels
panels = [appdata.PanelData(title, p.method, p.coords, p.index, p.joint, True) for title, p in maps.items()]
fig = figures.poster_figure(panels, y_test, class_names, VIEWS, label_title="class",
                            title="Synthetic VEGAS-shaped test items (SYNTHETIC data)")
save(fig, "embedding_maps")
fig
'''),
    md('''
## 2 · Precision-recall curves
'''),
    code('''
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
pr_curves = {}
for ax, (key, label) in zip(axes, [("a→v", "audio → visual"), ("v→a", "visual → audio")]):
    for name in embeddings:
        recall, precision = scored[(name, key)].precision_recall_curve(11)
        pr_curves[(name, label)] = (recall, precision)
        ax.plot(recall, precision, marker="o", ms=3, label=name)
    ax.set_title(label); ax.set_xlabel("recall"); ax.set_xlim(0, 1); ax.set_ylim(0, 1.02); ax.grid(alpha=0.3)
axes[0].set_ylabel("interpolated precision"); axes[1].legend()
fig.suptitle("Precision-recall (SYNTHETIC data, class relevance)")
save(fig, "precision_recall")
plt.show()
'''),
    md('''
## 3 · Per-class AP (audio → visual)
'''),
    code('''
per_class = {}
for name in embeddings:
    ap = scored[(name, "a→v")].average_precision()
    per_class[name] = metrics.per_class_average_precision(ap, y_test)
classes = sorted(next(iter(per_class.values())))
width = 0.8 / len(per_class)
fig, ax = plt.subplots(figsize=(10, 3.6))
for k, (name, aps) in enumerate(per_class.items()):
    ax.bar(np.arange(len(classes)) + (k - (len(per_class) - 1) / 2) * width, [100 * aps[c] for c in classes],
           width, label=name)
ax.set_xticks(np.arange(len(classes)), [class_names[c] for c in classes], rotation=30, ha="right")
ax.set_ylabel("AP (%)"); ax.set_ylim(0, 112); ax.legend(ncol=len(per_class), loc="upper center"); ax.grid(axis="y", alpha=0.3)
ax.set_title("Per-class AP, audio → visual (SYNTHETIC data)")
save(fig, "per_class_ap")
plt.show()
'''),
    md('''
## 4 · Sheet / lyrics / audio segment similarity of one work (music21 dataset)

UGAAR is fitted on the folds that do not contain the work (the dataset's folds are grouped by
work), then the work's fragments are embedded in score order. A well-aligned pair of views puts
the largest value of each row on the diagonal. In our measurements the sheet-audio directions
align well and the lyrics directions barely (see `01_results_table`), and the matrices show it.
'''),
    code('''
from crossmodal_core.data import catalog

music_app = catalog.open_dataset("music21")  # with the fragments (notes, lyrics) behind the thumbnails
music = music_app.dataset
MUSIC_VIEWS = ["sheet", "lyrics", "audio"]
works = np.asarray(music.metadata["work_id"]).astype(str)
lyrics = np.asarray(music.metadata["lyrics"]).astype(str)
# a work of readable size whose fragments all have different words (a Kyrie repeating one line
# would make any lyrics matrix flat): the largest with at most 16 fragments, ties by id
ids, counts = np.unique(works, return_counts=True)
readable = [(n, w) for n, w in zip(counts, ids) if 4 <= n <= 16 and len(set(lyrics[works == w])) == n]
work_id = str(max(readable)[1])
rows = alignment.work_segments(music, work_id)
held_out = np.isin(music.folds, np.unique(music.folds[rows]))
train_rows = np.nonzero(~held_out)[0]
if UGAAR_LIMIT_TRAIN is not None and len(train_rows) > UGAAR_LIMIT_TRAIN:
    train_rows = np.sort(np.random.default_rng(SEED).choice(train_rows, UGAAR_LIMIT_TRAIN, replace=False))
ugaar = make_model("ugaar", **UGAAR_PARAMS).fit([music.view(v)[train_rows] for v in MUSIC_VIEWS])
z = dict(zip(MUSIC_VIEWS, ugaar.transform([music.view(v)[rows] for v in MUSIC_VIEWS])))
title = str(music.metadata["title"][rows[0]]) if "title" in music.metadata else work_id
print(f"work {work_id!r} ({title}): {len(rows)} fragments; UGAAR fitted on {len(train_rows)} rows of other works")
'''),
    code('''
pairs = [("sheet", "lyrics"), ("sheet", "audio"), ("lyrics", "audio")]
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
similarity = {}
for ax, (a, b) in zip(axes, pairs):
    S = alignment.segment_similarity(z[a], z[b])
    similarity[(a, b)] = S
    im = ax.imshow(S, cmap="magma", vmin=-1, vmax=1)
    hits = (S.argmax(axis=1) == np.arange(len(S))).mean()
    ax.set_title(f"{a} × {b}\\nrow max on the diagonal: {100 * hits:.0f} %")
    ax.set_xlabel(f"{b} segment"); ax.set_ylabel(f"{a} segment")
fig.colorbar(im, ax=axes, shrink=0.8, label="cosine similarity")
fig.suptitle(f"UGAAR segment similarity: {title}")
save(fig, "segment_similarity")
plt.show()
'''),
    md('''
## 5 · Visualised retrieval results (music21 dataset)

The first sheet fragment of that work queries the audio of every fragment in the held-out folds
(UGAAR's shared space, cosine similarity); relevant = same work. The figure is the one the
retrieval page downloads: score snippet of the query, log-mel thumbnails of the synthesised
audio of the top 5, a green frame and tick when relevant, a red frame and cross when not.
'''),
    code('''
gallery_rows = np.nonzero(held_out)[0]
z_gallery = dict(zip(MUSIC_VIEWS, ugaar.transform([music.view(v)[gallery_rows] for v in MUSIC_VIEWS])))
ugaar_model = appdata.TrainedModel("ugaar", tuple(MUSIC_VIEWS), "work", {})  # in memory, not in the store
rv = appdata.RetrievalView(ugaar_model, "sheet", "audio", gallery_rows, z_gallery["sheet"], z_gallery["audio"],
                           music.label("work")[gallery_rows])
query_pos = int(np.searchsorted(gallery_rows, rows[0]))
fig = figures.retrieval_figure(music_app, rv, query_pos, k=5)
save(fig, "retrieval_results")
fig
'''),
]

NOTEBOOKS = {
    "01_results_table.ipynb": RESULTS_TABLE,
    "02_poster_figures.ipynb": POSTER_FIGURES,
}


def build(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC,
                                             "language_info": {"name": "python"}})
    # fixed ids keep regenerated files byte-identical
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    return nb


def render(cells) -> str:
    return nbformat.writes(build(cells)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / name
        text = render(cells)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print("wrote", path)
    if stale:
        print("out of date (run python notebooks/build_notebooks.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
