"""What watching costs: db5-gestures with and without three browser windows on its live view, one run.

    python bench/view_overhead.py [--speed 1] [--phase 10] [--out bench/results/view-overhead]

One run of ``graphs/db5-gestures.yaml`` under the real supervisor with the view serving, in
alternating phases of ``--phase`` seconds: no page open (the windows show about:blank, so nothing
is tapped), then three windows of Debian's headless chromium on the view (separate windows, not
background tabs, so none is throttled), and so on. Alternating keeps a change in the machine's
load from landing on one side only. The hand's end-to-end latencies (sample acquired -> the hand
receives the decision) are split between the phases by the hand's received count, read from its
heartbeat at each switch (to within a heartbeat, 250 ms). The hands' end-of-stream GIF, sheet and
trace are switched off: they are drawn after the measured span, and on a loaded 2-core VM, with the
browsers closing at the same moment, hand_sim's finish() (which sends no heartbeat) outlasted the
supervisor's 10 s hang timeout. Also writes a screenshot of the page
(``bench/results/view-db5-gestures.png``) and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from emgflow.graph import load_graph
from emgflow.supervisor import Supervisor
from emgflow.trace import percentiles
from emgflow.view.server import View

GRAPH = Path(__file__).resolve().parents[1] / "graphs" / "db5-gestures.yaml"
SHOT = Path(__file__).resolve().parent / "results" / "view-db5-gestures.png"
NODES = ("classify", "vote", "hand", "regress", "hand_angles")
WINDOWS = 3


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1300"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium") or "chromium"
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=opts)


def _received(sup: Supervisor) -> dict[str, int]:
    return {nid: sum(v["received"] for v in (sup.procs[nid].stats or {}).get("in", {}).values()) for nid in NODES}


def drive(sup: Supervisor, url: str, phase_s: float, marks: list[tuple[bool, dict[str, int]]], errors: list[str]) -> None:
    """Alternate no page / three windows on the view until the graph ends; mark each switch."""
    try:
        driver = _browser()
        handles = [driver.current_window_handle]
        for _ in range(WINDOWS - 1):
            driver.switch_to.new_window("window")
            handles.append(driver.current_window_handle)
        while not all(p.state == "running" for p in sup.procs.values()):
            if sup.stop_requested or any(p.state in ("done", "failed") for p in sup.procs.values()):
                return
            time.sleep(0.2)
        watching = False
        while all(p.state == "running" for p in sup.procs.values() if p.is_source):
            marks.append((watching, _received(sup)))
            for h in handles:
                driver.switch_to.window(h)
                driver.get(url if watching else "about:blank")
            time.sleep(phase_s)
            if watching and not SHOT.exists():
                driver.save_screenshot(str(SHOT))
            watching = not watching
        marks.append((watching, _received(sup)))
        driver.quit()
    except Exception as exc:  # report, and let the graph run to its end
        errors.append(f"{type(exc).__name__}: {exc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = as the Myo streamed: 70 s)")
    ap.add_argument("--phase", type=float, default=10.0, help="seconds per phase (no page / three windows)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/view-overhead"))
    args = ap.parse_args()
    SHOT.unlink(missing_ok=True)
    overrides = [f"source.speed={args.speed}"] + [f"{h}.{k}=false" for h in ("hand", "hand_angles")
                                                  for k in ("gif", "sheet", "trace")]
    sup = Supervisor(load_graph(GRAPH, overrides),
                     on_event=lambda n, t: print(f"[{n}] {t}", file=sys.stderr))
    view = View(sup, port=0)
    url = view.start()
    marks: list[tuple[bool, dict[str, int]]] = []
    errors: list[str] = []
    driver = threading.Thread(target=drive, args=(sup, url, args.phase, marks, errors), daemon=True)
    driver.start()
    code = sup.run()
    view.close(code)
    driver.join(timeout=30)
    if code != 0 or errors:
        raise SystemExit(f"graph exit {code}; browser: {errors}")

    result: dict[str, Any] = {"graph": GRAPH.name, "speed": args.speed, "phase_s": args.phase, "windows": WINDOWS,
                              "phases": [[w, m] for w, m in marks], "nodes": {}}
    for nid in NODES:
        e2e = np.asarray(sup.procs[nid].latency.get("e2e_us", []))
        sides: dict[bool, list[np.ndarray]] = {False: [], True: []}
        for (watching, a), (_, b) in zip(marks, marks[1:]):
            sides[watching].append(e2e[a[nid]:b[nid]])
        off, on = (np.concatenate(sides[k]) if sides[k] else np.zeros(0) for k in (False, True))
        po, pw = percentiles(off), percentiles(on)
        result["nodes"][nid] = {"without": po, "with": pw,
                                "p99_ratio": pw["p99_us"] / po["p99_us"] if po["n"] and pw["n"] else None}
        print(f"{nid:12s} without: n {po['n']:5d} p50 {po.get('p50_us', 0) / 1000:6.2f} p99 {po.get('p99_us', 0) / 1000:6.2f} ms"
              f"   with {WINDOWS} windows: n {pw['n']:5d} p50 {pw.get('p50_us', 0) / 1000:6.2f} "
              f"p99 {pw.get('p99_us', 0) / 1000:6.2f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}.json and {SHOT}")


if __name__ == "__main__":
    main()
