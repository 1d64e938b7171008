"""The live view in a real headless browser (Debian's chromium, driven by Selenium), on loopback only:
the page loads, its scopes advance, the stop button stops the graph with exit 0, the final table
matches `--stats`, and a view that needs its token refuses whoever does not show it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from emgflow.graph import load_graph
from emgflow.supervisor import Supervisor
from emgflow.view.auth import needs_token
from emgflow.view.server import View

from ..e2e.procs import STARTED, wait_for
from .browser import GRAPH, scope_rows as _rows

By = pytest.importorskip("selenium.webdriver.common.by", reason="selenium is not installed (the dev extra)").By
from selenium.webdriver.support.ui import Select  # noqa: E402


def _start_with_view(data_dir: Path, tmp_path: Path, stats: Path) -> tuple[subprocess.Popen, str]:
    """`emgflow run tests/view/graph.yaml --view --view-port 0` as a real process; returns it and the page's URL."""
    proc = subprocess.Popen([sys.executable, "-m", "emgflow.cli.app", "run", str(GRAPH), "--quiet", "--view", "--view-port", "0",
                             "--stats", str(stats)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EMGFLOW_DATA": str(data_dir), "VIEW_TEST_OUT": str(tmp_path)},
                            start_new_session=True)
    STARTED.append(proc)
    for line in proc.stderr:
        if line.startswith("live view: "):
            return proc, line.split()[-1]
    raise AssertionError(f"no view URL; exit {proc.wait()}: {proc.stdout.read()}")


def test_page_scopes_stop_button_and_final_counts(browser, data_dir, tmp_path):
    stats = tmp_path / "stats.json"
    proc, url = _start_with_view(data_dir, tmp_path, stats)
    assert url.startswith("http://127.0.0.1:") and "token" not in url  # loopback: no token
    browser.get(url)
    assert wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#table tr[data-node]")) == 5, 30)
    assert browser.find_element(By.ID, "graph-name").text == "view-test"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#graph .node")) == 5
    Select(browser.find_element(By.ID, "stream-pick")).select_by_visible_text("envelope.out")
    browser.find_element(By.ID, "add-scope").click()
    Select(browser.find_element(By.ID, "hist-node")).select_by_visible_text("envelope")

    # The scopes' data advance (the source's EMG is on by default), drawn by uPlot.
    assert wait_for(lambda: _rows(browser, "source.emg") > 0 and _rows(browser, "envelope.out") > 0, 90)
    first = (_rows(browser, "source.emg"), _rows(browser, "envelope.out"))
    assert wait_for(lambda: _rows(browser, "source.emg") > first[0] + 100 and _rows(browser, "envelope.out") > first[1] + 10, 30)
    assert browser.find_elements(By.CSS_SELECTOR, '.scope[data-stream="source.emg"] canvas')
    assert wait_for(lambda: "p99" in browser.find_element(By.ID, "hist-note").text, 30)
    assert browser.find_elements(By.CSS_SELECTOR, "#hist rect")
    assert wait_for(lambda: browser.execute_script(
        'const i = document.querySelector("img[data-hand=hand_view]"); return i.complete && i.naturalWidth > 0;'), 30)
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-node="envelope"] td[data-col="state"]').text == "running"

    browser.find_element(By.ID, "stop").click()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ended") == "0", 10)
    assert "exit 0" in browser.find_element(By.ID, "status").text

    final = json.loads(stats.read_text())["nodes"]
    for nid, s in final.items():
        ins = s["in"].values()
        expected = {"in": sum(v["received"] for v in ins), "out": s["sent"], "dropped": sum(v["dropped"] for v in ins),
                    "gaps": sum(v["gaps"] for v in ins), "bad": s["malformed"], "restarts": s["restarts"]}
        shown = {col: int(browser.find_element(By.CSS_SELECTOR, f'tr[data-node="{nid}"] td[data-col="{col}"]').text)
                 for col in expected}
        assert shown == expected, nid
    assert final["envelope"]["sent"] > 10  # the run was long enough for the comparison to mean something


def test_beyond_loopback_the_view_refuses_whoever_lacks_the_token(browser, data_dir, monkeypatch):
    assert needs_token("0.0.0.0") and needs_token("192.0.2.7") and needs_token("lab-pc.local")
    assert not needs_token("127.0.0.1") and not needs_token("::1") and not needs_token("localhost")
    # The token gate does not depend on the address, so this test listens on loopback only.
    monkeypatch.setenv("EMGFLOW_DATA", str(data_dir))
    sup = Supervisor(load_graph(GRAPH))
    view = View(sup, host="127.0.0.1", port=0, token="s3cret-token")
    url = view.start()
    base = url.split("?")[0]
    try:
        for path, data in (("", None), ("static/view.js", None), ("hand/hand_view.png", None), ("api/stop", b"{}")):
            req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(req, timeout=10)
            assert refused.value.code == 403, path
        wrong = urllib.request.Request(base + "api/stop?token=guess", data=b"{}", headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=10)
        assert not sup.stop_requested
        with pytest.raises(InvalidStatus) as refused_ws:  # the WebSocket too, closed before it opens
            connect(base.replace("http", "ws") + "ws", open_timeout=10).close()
        assert refused_ws.value.response.status_code == 403

        browser.get(base)  # a browser without the token: refused, no page, no WebSocket
        assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(url)   # with it: the page, and its WebSocket (the cookie the answer set) get in
        assert wait_for(lambda: browser.find_element(By.ID, "graph-name").text == "view-test", 20)
        browser.get(base)  # later visits carry the cookie
        assert wait_for(lambda: browser.find_element(By.ID, "graph-name").text == "view-test", 20)
    finally:
        view.close(0)
        sup.control.close()  # this Supervisor never ran, so nothing else releases what it opened
        sup.ctx.term()
        shutil.rmtree(sup.rundir, ignore_errors=True)
