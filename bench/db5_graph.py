"""The DB5 model graph end to end: latency at every node and what both models did online.

    python bench/db5_graph.py [--speed 1] [--out bench/results/db5-gestures]

Runs ``graphs/db5-gestures.yaml`` (DB5 subject 1 replayed at ``--speed`` x real time into the
LSTM-CNN gesture branch and the LE-ConvMN joint-angle branch, each driving a simulated hand) under
the real supervisor, then reads what its recorders wrote:

- end-to-end latency per node from the header traces (sample acquisition -> the node's receive),
  p50 / p99, and a CDF (``OUT-latency.png``);
- the voted gestures against the cue, and the joint angles against the measured glove (CC per joint,
  glove units), on the held-out repetitions and on the training ones apart; the recording's
  rows are placed with the checkpoints' own pipelines (``datasets.run_pipeline``);
- ``OUT-angles.png``: predicted (online) against measured angles, held-out repetitions shaded.

The replayed span starts mid-recording, so the recurrent state starts there too: the figures are a
demo's, not ``emgflow eval``'s (which streams the whole recording; tests check that the nodes give
the evaluation's outputs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from emgflow.benchmark import plot_cdf, run_graph_latency
from emgflow.graph import load_graph
from emgflow.ml import checkpoint
from emgflow.ml.datasets import dataset, run_pipeline
from emgflow.ml.evaluate import correlation
from emgflow.recordings import load
from emgflow.trace import percentiles

GRAPH = Path(__file__).resolve().parents[1] / "graphs" / "db5-gestures.yaml"
SHOWN = ("classify", "vote", "hand", "regress", "hand_angles")


def online_results(graph: Any) -> dict[str, Any]:
    """Score the recorders' files against the replayed span of the recording."""
    params = {nid: spec.params for nid, spec in graph.nodes.items()}
    rec = load(params["source"]["path"])
    a, b = int(params["source"]["start_s"] * rec.rate), int(params["source"]["stop_s"] * rec.rate)
    emg = rec.emg[a:b]
    label, rep = rec.streams["label"][a:b, 0], rec.streams["repetition"][a:b, 0]
    spec = dataset("db5")
    held_out = np.isin(rep, spec.test)

    clf = checkpoint.load(params["classify"]["model"])
    _, last, _ = run_pipeline(clf["pipeline"], emg, rec.rate)
    decisions = np.load(params["record_decisions"]["path"])
    voted = decisions["emg"][:, 0]
    proba = np.load(params["record_proba"]["path"])["emg"]
    if len(voted) != len(last) or len(proba) != len(last):
        raise RuntimeError(f"the graph made {len(voted)} decisions, the pipeline {len(last)} images")
    cue, test_rows = label[last], held_out[last]
    gestures = {}
    for name, rows in (("held out", test_rows), ("trained on", ~test_rows)):
        decided = rows & (voted >= 0)
        gestures[name] = {"images": int(rows.sum()), "window_acc": float((proba[rows].argmax(1) == cue[rows]).mean()),
                          "voted_acc": float((voted[decided] == cue[decided]).mean())}

    reg = checkpoint.load(params["regress"]["model"])
    _, last_b, _ = run_pipeline(reg["pipeline"], emg, rec.rate)
    pred = np.load(params["record_angles"]["path"])["emg"]
    if len(pred) != len(last_b):
        raise RuntimeError(f"the graph made {len(pred)} angle rows, the pipeline {len(last_b)} exposures")
    true = rec.streams["glove"][a:b][last_b][:, list(spec.target_columns)]
    test_b = held_out[last_b]
    angles = {name: {"rows": int(rows.sum()),
                     "cc_per_joint": correlation(pred[rows], true[rows]).tolist()}
              for name, rows in (("held out", test_b), ("trained on", ~test_b))}
    for v in angles.values():
        v["cc_mean"] = float(np.mean(v["cc_per_joint"]))
    return {"gestures": gestures, "angles": angles, "joints": list(reg["outputs"]),
            "_traces": ((a + last_b) / rec.rate, pred, true, test_b)}


def plot_angles(traces: tuple, names: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, pred, true, held_out = traces
    fig, axes = plt.subplots(5, 2, figsize=(12, 9), sharex=True)
    edges = np.flatnonzero(np.diff(np.r_[0, held_out.astype(int), 0]))
    for j, ax in enumerate(axes.T.ravel()):
        for s, e in zip(edges[::2], edges[1::2]):
            ax.axvspan(t[s], t[e - 1], color="0.9", lw=0)
        ax.plot(t, true[:, j], lw=1, color="0.3", label="glove (measured)")
        ax.plot(t, pred[:, j], lw=1, color="tab:red", label="LE-ConvMN in the graph")
        ax.set_title(names[j], fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=8, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("recording time (s); shaded: held-out repetitions")
    fig.suptitle("graphs/db5-gestures.yaml: joint angles streamed by the regress node vs the glove (DB5 subject 1)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", type=float, default=1.0, help="replay speed (x real time; 1 = as a Myo streams)")
    ap.add_argument("--out", type=Path, default=Path("runs/db5-gestures-bench"),
                    help="prefix of the JSON and PNG files written")
    args = ap.parse_args()
    overrides = [f"source.speed={args.speed}"]
    graph = load_graph(GRAPH, overrides)
    nodes = run_graph_latency(GRAPH, None, overrides)
    latency = {nid: percentiles(nodes[nid]["latency"]["e2e_us"]) for nid in SHOWN}
    dropped = {nid: sum(v["dropped"] for v in n["stats"].get("in", {}).values()) for nid, n in nodes.items()}
    result = {"graph": str(GRAPH.name), "speed": args.speed, "latency": latency, "dropped": dropped,
              **online_results(graph)}

    console = Console()
    table = Table(title=f"{GRAPH.name} at {args.speed:g}x: end-to-end latency (sample acquired -> node receives)")
    for col in ("node", "n", "p50 ms", "p99 ms", "max ms", "dropped"):
        table.add_column(col, justify="right")
    for nid, p in latency.items():
        table.add_row(nid, str(p["n"]), f"{p['p50_us'] / 1000:.2f}", f"{p['p99_us'] / 1000:.2f}",
                      f"{p['max_us'] / 1000:.2f}", str(dropped[nid]))
    console.print(table)
    for name, g in result["gestures"].items():
        a = result["angles"][name]
        console.print(f"{name:>10s} repetitions: {g['images']} images, per image {g['window_acc']:.3f}, voted "
                      f"{g['voted_acc']:.3f}; {a['rows']} angle rows, mean CC {a['cc_mean']:.3f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    traces = result.pop("_traces")
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=1))
    plot_cdf({nid: nodes[nid]["latency"]["e2e_us"] for nid in SHOWN}, f"{args.out}-latency.png",
             f"{GRAPH.name} at {args.speed:g}x real time: end-to-end latency")
    plot_angles(traces, result["joints"], Path(f"{args.out}-angles.png"))
    console.print(f"wrote {args.out}.json, {args.out}-latency.png, {args.out}-angles.png")


if __name__ == "__main__":
    main()
