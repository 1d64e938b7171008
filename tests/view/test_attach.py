"""`emgflow view` attaches a live view to a graph `emgflow run` is already running: same page, same
taps, and its stop button stops that run cleanly (exit 0)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from emgflow.view.attach import running_runs

from ..e2e.procs import STARTED, start_run, wait_for
from .browser import GRAPH, scope_rows as _rows

By = pytest.importorskip("selenium.webdriver.common.by", reason="selenium is not installed (the dev extra)").By


def test_emgflow_view_attaches_to_a_running_graph_and_stops_it(browser, data_dir, tmp_path):
    env = {"EMGFLOW_DATA": str(data_dir), "VIEW_TEST_OUT": str(tmp_path)}
    run = start_run(GRAPH, env=env)
    assert wait_for(lambda: run.pid in running_runs(), 60), "the run wrote no status file"
    view = subprocess.Popen([sys.executable, "-m", "emgflow.cli.app", "view", "--run", str(run.pid), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env}, start_new_session=True)
    STARTED.append(view)
    url = next(line.split()[-1] for line in view.stderr if line.startswith("live view: "))
    browser.get(url)
    assert wait_for(lambda: browser.find_element(By.ID, "graph-name").text == "view-test", 30)
    assert wait_for(lambda: _rows(browser, "source.emg") > 0, 30)
    first = _rows(browser, "source.emg")
    assert wait_for(lambda: _rows(browser, "source.emg") > first + 100, 30)
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-node="envelope"] td[data-col="state"]').text == "running"

    browser.find_element(By.ID, "stop").click()
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    _, err = view.communicate(timeout=30)
    assert view.returncode == 0, err
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-ended") == "0"


def test_emgflow_view_names_what_it_cannot_attach_to():
    out = subprocess.run([sys.executable, "-m", "emgflow.cli.app", "view", "--run", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no emgflow run with PID 1" in out.stderr
