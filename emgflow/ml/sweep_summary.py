"""The table of a sweep's results folder: mean +- SD per (dataset, model), each subject counted once.

Built from the result files alone (``sweep.results``), so it is the same however and in whatever
order the jobs ran, and it can be rebuilt at any time from a partly finished sweep.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .sweep import results


def group(record: Mapping[str, Any]) -> str:
    """The summary row a model job belongs to: dataset/model/recipe, plus how it was trained."""
    model = record["model"] + ("_emg" if record.get("wp") is False else "")
    how = ("/cross" if record["kind"] == "pretrain" else "") + ("/adapted" if record.get("init") else "")
    return f"{record['dataset']}/{model}/{record['recipe']}{how}"


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def summarize(out: Path) -> dict[str, Any]:
    """Mean +- SD per (dataset, model): accuracies for classifiers, CC / RMSE / NRMSE for regressors;
    written to ``<out>/summary.json`` and ``summary.md``.

    Each subject counts once: its seeds are averaged first; ``seed_sd`` is the mean over subjects
    of the SD over that subject's seeds (present where a subject has several seeds).
    """
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}  # key -> subject -> one row per seed
    errors = []
    for r in results(out):
        if "error" in r:
            errors.append(r["name"])
            continue
        if r["kind"] in ("baselines", "reg_baselines"):
            entries = {f"{r['dataset']}/{name}": m for name, m in r["metrics"].items()}
        else:
            entries = {group(r): r["metrics"]}
        for key, m in entries.items():
            keys = ("train_acc", "test_acc", "vote_acc", "top3_acc") if "test_acc" in m else ("cc", "rmse", "nrmse")
            row = {k: m[k] for k in keys}
            if "smoothed3" in m:
                row["cc_smoothed3"] = m["smoothed3"]["cc"]
                row["nrmse_smoothed3"] = m["smoothed3"]["nrmse"]
            runs.setdefault(key, {}).setdefault(str(r["subject"]), []).append(row)
    groups: dict[str, dict[str, dict[str, float]]] = {}
    per_subject: dict[str, dict[str, dict[str, float]]] = {}
    for key, subjects in runs.items():
        per_subject[key] = {s: {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
                            for s, rows in subjects.items()}
        metrics = next(iter(per_subject[key].values()))
        groups[key] = {k: _stats([row[k] for row in per_subject[key].values()]) for k in metrics}
        for k, st in groups[key].items():
            st["seeds"] = max(len(rows) for rows in subjects.values())
            if st["seeds"] > 1:
                st["seed_sd"] = float(np.mean([np.std([row[k] for row in rows], ddof=1)
                                               for rows in subjects.values() if len(rows) > 1]))
    summary = {"groups": groups, "per_subject": per_subject, "errors": errors}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(markdown(summary))
    return summary


def markdown(summary: dict[str, Any]) -> str:
    """The summary as the table the issue notes quote, then each subject's figures."""
    lines = ["| dataset / model / recipe | subjects x seeds | metrics (mean ± SD over subjects; SD over seeds) |",
             "|---|---|---|"]
    for key, g in summary["groups"].items():
        first = next(iter(g.values()))
        cells = ", ".join(f"{m} {st['mean']:.3f} ± {st['sd']:.3f}" + (f" (seeds ± {st['seed_sd']:.3f})"
                                                                      if "seed_sd" in st else "")
                          for m, st in g.items())
        lines.append(f"| {key} | {first['n']} x {first['seeds']} | {cells} |")
    lines += ["", "Per subject, mean over its seeds (classifiers: per-window / vote accuracy; regressors: CC / NRMSE):",
              ""]
    for key, rows in summary["per_subject"].items():
        a, b = ("test_acc", "vote_acc") if "test_acc" in next(iter(rows.values())) else ("cc", "nrmse")
        cells = ", ".join(f"{s}: {r[a]:.3f}/{r[b]:.3f}" for s, r in rows.items())
        lines.append(f"- {key}: {cells}")
    if summary["errors"]:
        lines.append(f"\nFailed jobs: {', '.join(summary['errors'])}")
    return "\n".join(lines) + "\n"
