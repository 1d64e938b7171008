"""Soak: run a recording graph for N minutes and report every process's memory over time.

    python bench/soak.py --minutes 30 --out bench/results/soak.json     # hdemg-throughput, looping, real time

Each node process's resident memory (VmRSS) is sampled every ``--every`` seconds; after a warm-up
(``--warmup`` s: imports, first allocations, filter and queue buffers filling) every process must stay
flat: the figure reported is its growth from the end of the warm-up to the end, against the 10 %
issue 21 asks for. A PNG of RSS over time is written beside the JSON. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from procstat import Sampler

from emgflow.graph import load_graph
from emgflow.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[1]


def soak(graph: Path, sets: list[str], minutes: float, every: float, warmup: float) -> dict:
    g = load_graph(graph, sets)
    sup = Supervisor(g, on_event=lambda n, t: print(f"[{n}] {t}", file=sys.stderr))
    sampler = Sampler(period=every)
    sampler.start()
    code = sup.run(minutes * 60)
    sampler.done.set()
    sampler.join()
    t0 = sampler.samples[0][0]
    series: dict[str, list[tuple[float, float]]] = {}
    for t, procs in sampler.samples:
        for name, rss_kb, _ in procs.values():
            series.setdefault(name, []).append((t - t0, rss_kb / 1024))
    end = sup.started_at - t0 + minutes * 60 - every  # the supervisor's stop is not steady state
    report = {}
    for name, points in sorted(series.items()):
        steady = [mb for t, mb in points if warmup <= t <= end]
        if len(steady) < 2:
            continue
        report[name] = {"after_warmup_mb": steady[0], "end_mb": steady[-1], "max_mb": max(steady),
                        "growth_pct": 100 * (steady[-1] - steady[0]) / steady[0]}
    stats = {nid: p.stats for nid, p in sup.procs.items()}
    return {"graph": str(graph), "set": sets, "minutes": minutes, "exit_code": code, "warmup_s": warmup,
            "processes": report, "series": series, "stats": stats}


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name, points in result["series"].items():
        if name in result["processes"]:
            ax.plot([t / 60 for t, _ in points], [mb for _, mb in points], label=name)
    ax.axvline(result["warmup_s"] / 60, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("minutes")
    ax.set_ylabel("resident memory (MB)")
    ax.set_title(f"{Path(result['graph']).name}: every node process over {result['minutes']:g} min")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", type=Path, default=ROOT / "graphs/hdemg-throughput.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=None,
                    help="NODE.PARAM=VALUE (default for hdemg-throughput: looping at real time)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds not judged at the start")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (a PNG is written beside it)")
    args = ap.parse_args()
    os.environ.setdefault("EMGFLOW_DATA", str(ROOT.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory(prefix="emgflow-soak-") as tmp:
        sets = args.sets if args.sets is not None else [
            "source.speed=1", "source.loop=true", f"record.path={tmp}/envelope.emgrec"]
        result = soak(args.graph, sets, args.minutes, args.every, args.warmup)
    print(f"{result['graph']} for {args.minutes:g} min (exit {result['exit_code']}), growth after a "
          f"{args.warmup:g} s warm-up:")
    for name, r in result["processes"].items():
        print(f"  {name:16s} {r['after_warmup_mb']:7.1f} -> {r['end_mb']:7.1f} MB (max {r['max_mb']:.1f}): "
              f"{r['growth_pct']:+.1f} %")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        plot(result, args.out.with_suffix(".png"))
        print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
