"""The results tables the home page shows: the committed reference results
(``assets/results/*.json``) and the user's own ``evaluate`` runs (:func:`store.user_results_dir`),
each row labelled with its ``origin`` (``"reference"`` / ``"yours"``).

Moved from the old ``appdata.py``; ``crossmodal_core/report.py`` (being written) will own
these and this module will import them.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from crossmodal_core import store

__all__ = ["load_results", "poster_table", "REFERENCE", "YOURS"]

REFERENCE = "reference"
YOURS = "yours"


def load_results() -> list[dict[str, Any]]:
    """Rows of every reference ``assets/results/*.json`` and of the user's own runs as flat
    dicts; each names its source file and its ``origin`` (:data:`REFERENCE` / :data:`YOURS`)."""
    rows: list[dict[str, Any]] = []
    for origin, folder in ((REFERENCE, store.results_dir()), (YOURS, store.user_results_dir())):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith(".") or store.is_temporary(path):
                continue
            try:
                data = store.read_json(path)
            except (ValueError, OSError):
                continue
            for rec in _records(data):
                if isinstance(rec, dict):
                    rows.append({"source": path.stem, **rec, "origin": origin})
    return rows


def _records(data: Any) -> list:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("rows", "results", "records", "table"):
            if isinstance(data.get(key), list):
                meta = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
                return [{**meta, **r} if isinstance(r, dict) else r for r in data[key]]
        return [data]
    return []


def poster_table(rows: list[dict[str, Any]]):
    """Results in the poster's layout: one row per model, one column per (dataset, direction),
    cells ``mean ± std`` of MAP (%) over folds; the user's own runs get their own columns,
    marked ``[your run]``. Returns a pandas DataFrame (empty if none)."""
    import pandas as pd

    if not rows:
        return pd.DataFrame()
    df = pd.json_normalize(rows, sep=".")
    model_col = _first_col(df, ("model", "model_name", "name"))
    dataset_col = _first_col(df, ("dataset", "dataset_name", "source"))
    if model_col is None:
        return df
    long = []
    for _, r in df.iterrows():
        for col in df.columns:
            direction = _direction_of(col)
            if direction is None:
                continue
            value = r[col]
            if isinstance(value, (int, float, np.floating)) and np.isfinite(value):
                dataset = str(r[dataset_col]) if dataset_col else ""
                if r.get("origin") == YOURS:
                    dataset = f"{dataset} [your run]"
                subset = r.get("subset") if "subset" in df.columns else None
                if isinstance(subset, str) and subset not in ("", "all"):
                    dataset = f"{dataset} ({subset})"
                long.append({"model": r[model_col], "dataset": dataset, "direction": direction, "map": float(value)})
    if not long:
        return df
    ldf = pd.DataFrame(long)
    if ldf["map"].max() <= 1.0:
        ldf["map"] *= 100.0
    agg = ldf.groupby(["model", "dataset", "direction"])["map"].agg(["mean", "std", "count"]).reset_index()
    agg["cell"] = [f"{m:.2f} ± {s:.2f}" if c > 1 and np.isfinite(s) else f"{m:.2f}"
                   for m, s, c in zip(agg["mean"], agg["std"], agg["count"])]
    table = agg.pivot_table(index="model", columns=["dataset", "direction"], values="cell", aggfunc="first")
    table.columns = [f"{d} {dirn}".strip() for d, dirn in table.columns]
    return table


def _first_col(df, names: Sequence[str]) -> str | None:
    for n in names:
        if n in df.columns:
            return n
    return None


def _direction_of(column: str) -> str | None:
    """Direction name of a MAP column (``map_a2v``, ``map.audio->visual``, ``map_xy`` ...)."""
    c = column.lower()
    if "map" not in c or "std" in c or "mrr" in c:
        return None
    tail = c.split("map", 1)[1].strip("._ -")
    if not tail:
        return None
    for sep in ("->", "2", "_to_", "→"):
        if sep in tail:
            a, b = tail.split(sep, 1)
            a, b = a.strip("._ "), b.strip("._ ")
            if a and b:
                return f"{a}→{b}"
    return {"xy": "x→y", "yx": "y→x"}.get(tail, tail)
