"""Earned or remembered? Score classifiers on their test repetitions with the recording replayed
in a random order of units (a movement repetition and the rest before it).

    python bench/blocked_order.py models/db1_s1_lstm_cnn.pt [more checkpoints] [--orders 2] [--baselines lda,rf]

Ninapro records the ten repetitions of each movement in a row. A feature that remembers the last
seconds (a slow envelope) can then name a test repetition's movement from the repetitions just
before it, a cue a user switching gestures never gives. Each checkpoint's subject recording is
replayed as recorded ("blocked") and with its units shuffled (``shuffled_units``, seeds 0..N-1), the
checkpoint's causal pipeline re-run on it; the model as trained (blocked order) and the baselines
(LDA, random forest), fitted once on the recorded order's training windows of the same pipeline's
features, score every test-repetition window. Movement windows and rest windows are
reported apart (all rest windows, not the protocol's one rest segment per repetition). An input
that the order does not move keeps its movement accuracy when shuffled.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from emgflow.ml import checkpoint
from emgflow.ml.baselines import BASELINES, feature_pipeline, make
from emgflow.ml.datasets import (Windows, classification_windows, dataset, load_subject, reordered, shuffled_units,
                                 windows_from)
from emgflow.ml.predict import predict_logits


def scores(pred: np.ndarray, w: Windows) -> dict[str, float]:
    rest = w.label == 0
    return {"movement": float((pred[~rest] == w.label[~rest]).mean()), "rest": float((pred[rest] == 0).mean())}


def check(path: Path, orders: int, baselines: list[str]) -> list[dict[str, object]]:
    ckpt = checkpoint.load(path)
    spec = dataset(ckpt["data"]["dataset"])
    subj = load_subject(spec, ckpt["data"]["test_subject"])
    pipe, step, seed = ckpt["pipeline"], ckpt["pipeline"][-1]["step"], ckpt.get("seed", 0)
    feats = feature_pipeline(pipe, spec.name)
    fit = classification_windows(subj, feats, ckpt["data"].get("train_step", 5), step, seed)["fit"]
    fitted = {name: make(name, seed).fit(fit.x, fit.label) for name in baselines}
    net = checkpoint.model_from(ckpt)
    rows = []
    for order_seed in [None, *range(orders)]:
        recs = subj.recordings
        if order_seed is not None:
            recs = [reordered(r, shuffled_units(r.streams["label"][:, 0], r.streams["repetition"][:, 0], order_seed))
                    for r in recs]
        order = "blocked" if order_seed is None else f"shuffled {order_seed}"
        w = windows_from(recs, pipe).split(spec.test)
        f = windows_from(recs, feats).split(spec.test)
        row = {"checkpoint": str(path), "subject": str(subj.subject), "model_channels": ckpt["stream"]["channels"],
               "order": order, "model": scores(predict_logits(net, w.x, torch.device("cpu")).argmax(1), w)}
        rows.append(row | {name: scores(est.predict(f.x), f) for name, est in fitted.items()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path, help="classifier checkpoints (their test subject is scored)")
    ap.add_argument("--orders", type=int, default=2, help="shuffled orders per checkpoint (seeds 0..N-1)")
    ap.add_argument("--baselines", default="lda", help=f"comma-separated, from {', '.join(BASELINES)} ('' for none)")
    ap.add_argument("--out", type=Path, default=Path("runs/blocked_order.json"), help="JSON results file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    baselines = [b for b in args.baselines.split(",") if b]
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        ap.error(f"unknown baselines {', '.join(sorted(unknown))}; known: {', '.join(BASELINES)}")
    rows = [row for path in args.checkpoints for row in check(path, args.orders, baselines)]
    who = ["model", *baselines]
    table = Table(title="test-repetition windows: accuracy on movement windows and on rest windows")
    for col in ("checkpoint", "subject", "model input", "order", *(f"{w} {k}" for w in who for k in ("movement", "rest"))):
        table.add_column(col)
    for r in rows:
        table.add_row(Path(r["checkpoint"]).name, r["subject"], f"{r['model_channels']} ch", r["order"],
                      *(f"{r[w][k]:.3f}" for w in who for k in ("movement", "rest")))
    Console(width=130).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
