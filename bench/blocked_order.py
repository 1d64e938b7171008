"""Earned or remembered? Score classifiers on their test repetitions with the recording replayed
in a random order of units (a movement repetition and the rest before it).

    python bench/blocked_order.py models/db1_s1_lstm_cnn.pt [more checkpoints] [--orders 2]

Ninapro records the ten repetitions of each movement in a row. A feature that remembers the last
seconds (a slow envelope) can then name a test repetition's movement from the repetitions just
before it, a cue a user switching gestures never gives. Each checkpoint's subject recording is
replayed as recorded ("blocked") and with its units shuffled (``shuffled_units``, seeds 0..N-1), the
checkpoint's causal pipeline re-run on it; the model as trained (blocked order) and LDA on the same
pipeline's features score every test-repetition window. Movement windows and rest windows are
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
from emgflow.ml.baselines import feature_pipeline, fit_proba
from emgflow.ml.datasets import (Windows, classification_windows, dataset, load_subject, reordered, shuffled_units,
                                 windows_from)
from emgflow.ml.train import predict_logits


def scores(pred: np.ndarray, w: Windows) -> dict[str, float]:
    rest = w.label == 0
    return {"movement": float((pred[~rest] == w.label[~rest]).mean()), "rest": float((pred[rest] == 0).mean())}


def check(path: Path, orders: int) -> list[dict[str, object]]:
    ckpt = checkpoint.load(path)
    spec = dataset(ckpt["data"]["dataset"])
    subj = load_subject(spec, ckpt["data"]["test_subject"])
    pipe, step, n = ckpt["pipeline"], ckpt["pipeline"][-1]["step"], len(ckpt["outputs"])
    feats = feature_pipeline(pipe, spec.name)
    lda_fit = classification_windows(subj, feats, ckpt["data"].get("train_step", 5), step, ckpt.get("seed", 0))["fit"]
    net = checkpoint.model_from(ckpt)
    rows = []
    for seed in [None, *range(orders)]:
        recs = subj.recordings
        if seed is not None:
            recs = [reordered(r, shuffled_units(r.streams["label"][:, 0], r.streams["repetition"][:, 0], seed))
                    for r in recs]
        order = "blocked" if seed is None else f"shuffled {seed}"
        w = windows_from(recs, pipe).split(spec.test)
        f = windows_from(recs, feats).split(spec.test)
        model = scores(predict_logits(net, w.x, torch.device("cpu")).argmax(1), w)
        lda = scores(fit_proba("lda", lda_fit, f, n, ckpt.get("seed", 0))[0].argmax(1), f)
        rows.append({"checkpoint": str(path), "subject": str(subj.subject), "model_channels": ckpt["stream"]["channels"],
                     "order": order, "model": model, "lda": lda})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path, help="classifier checkpoints (their test subject is scored)")
    ap.add_argument("--orders", type=int, default=2, help="shuffled orders per checkpoint (seeds 0..N-1)")
    ap.add_argument("--out", type=Path, default=Path("runs/blocked_order.json"), help="JSON results file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [row for path in args.checkpoints for row in check(path, args.orders)]
    table = Table(title="test-repetition windows: model / LDA accuracy (movement windows, rest windows)")
    for col in ("checkpoint", "subject", "model input", "order", "model movement", "model rest", "LDA movement",
                "LDA rest"):
        table.add_column(col)
    for r in rows:
        table.add_row(Path(r["checkpoint"]).name, r["subject"], f"{r['model_channels']} ch", r["order"],
                      *(f"{r[who][k]:.3f}" for who in ("model", "lda") for k in ("movement", "rest")))
    Console(width=130).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
