"""The training sweep (emgflow.ml.sweep): one job after another or as Ray tasks, same table; resumable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from emgflow.ml import checkpoint  # noqa: E402
from emgflow.ml.sweep import (Job, LocalExecutor, RayExecutor, SweepError, finished, pending,  # noqa: E402
                              result_path, run_sweep, save_result)
from emgflow.ml.sweep_summary import summarize  # noqa: E402

TINY = {"epochs": 1, "hidden": 8, "recipe": "fast_b"}
JOBS = [
    Job("grip-v2-lstm", "model", "grip", "v2", model="lstm", config=TINY),
    Job("libemg-lstm_cnn", "model", "libemg", "libemg-one-subject-myo", model="lstm_cnn",
        config={"epochs": 1, "hidden": 8, "train_step": 15, "recipe": "improved"}),
    Job("grip-v2-lstm-adapted", "model", "grip", "v2", model="lstm", seed=1, init="grip-v2-lstm", config=TINY),
    Job("grip-nobody-lstm", "model", "grip", "nobody", model="lstm", config=TINY),  # fails: no such subject
    Job("grip-v2-lstm-from-nobody", "model", "grip", "v2", model="lstm", init="grip-nobody-lstm", config=TINY),
]
FAILING = {"grip-nobody-lstm", "grip-v2-lstm-from-nobody"}


def ray_processes() -> set[int]:
    """Pids of the Ray daemons and workers on this machine (from /proc)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and any(k in cmd for k in (b"raylet", b"gcs_server", b"ray::", b"default_worker.py")):
            pids.add(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, data_dir) -> Path:
    """The jobs run one after another in this process."""
    out = tmp_path_factory.mktemp("local")
    with LocalExecutor(cpus=1) as where:
        run_sweep(JOBS, out, where)
    return out


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory, data_dir) -> tuple[Path, set[int]]:
    """The jobs run as tasks of a local Ray of two CPUs; also the pids of the processes Ray started."""
    pytest.importorskip("ray")
    out = tmp_path_factory.mktemp("ray")
    before, seen = ray_processes(), set()
    with RayExecutor(cpus=1, local_cpus=2) as where:
        run_sweep(JOBS, out, where, on_done=lambda result: seen.update(ray_processes()))
    return out, seen - before


@pytest.fixture(params=["local", "ray"])
def swept(request) -> Path:
    """Each sweep's results folder in turn."""
    if request.param == "local":
        return request.getfixturevalue("local_sweep")
    return request.getfixturevalue("ray_sweep")[0]


def test_ray_and_one_after_another_give_the_same_table(local_sweep, ray_sweep) -> None:
    local, ray_out = summarize(local_sweep), summarize(ray_sweep[0])
    assert set(local["groups"]) == {"grip/lstm/fast_b", "grip/lstm/fast_b/adapted", "libemg/lstm_cnn/improved"}
    assert local == ray_out
    assert (local_sweep / "summary.md").read_text() == (ray_sweep[0] / "summary.md").read_text()
    for job in JOBS:
        a, b = (json.loads(result_path(out, job.name).read_text()) for out in (local_sweep, ray_sweep[0]))
        assert a.get("metrics") == b.get("metrics") and ("error" in a) == ("error" in b)


def test_ray_is_shut_down_afterwards(ray_sweep) -> None:
    started = ray_sweep[1]
    assert started  # the check below can fail: Ray did start processes of its own
    assert not started & ray_processes()


def test_an_adapted_job_starts_from_the_model_its_sweep_saved(swept) -> None:
    ckpt = checkpoint.load(swept / "ckpt" / "grip-v2-lstm-adapted.pt")
    assert ckpt["data"]["init"]["path"] == os.path.join("ckpt", "grip-v2-lstm.pt")
    assert ckpt["seed"] == 1


def test_a_failed_job_keeps_its_traceback_and_the_others_finish(swept) -> None:
    failed = json.loads(result_path(swept, "grip-nobody-lstm").read_text())
    assert failed["error"].startswith("Traceback") and "grip has no subject 'nobody'" in failed["error"]
    after = json.loads(result_path(swept, "grip-v2-lstm-from-nobody").read_text())
    assert after["error"] == "it starts from job grip-nobody-lstm, which failed"
    assert finished(swept) == {j.name for j in JOBS} - FAILING
    assert sorted(summarize(swept)["errors"]) == sorted(FAILING)


def test_a_rerun_skips_the_finished_jobs_and_retries_the_failed(local_sweep) -> None:
    out = local_sweep
    kept = {j.name: result_path(out, j.name).read_bytes() for j in JOBS if j.name not in FAILING}
    assert {j.name for j in pending(JOBS, out)} == FAILING
    with LocalExecutor() as where:
        rerun = run_sweep(JOBS, out, where)
    assert {r["name"] for r in rerun} == FAILING
    assert all(result_path(out, name).read_bytes() == data for name, data in kept.items())


class Interrupted(LocalExecutor):
    """Runs the first job, then stops as Ctrl-C would, while the next one is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.ran = False

    def next_done(self):
        if self.ran:
            raise KeyboardInterrupt
        self.ran = True
        return super().next_done()


def test_an_interrupted_sweep_keeps_every_job_that_finished(tmp_path: Path, data_dir) -> None:
    jobs = [JOBS[1], Job("libemg-lstm_cnn-seed1", "model", "libemg", "libemg-one-subject-myo", model="lstm_cnn",
                         seed=1, config=JOBS[1].config)]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(jobs, tmp_path, Interrupted())
    assert finished(tmp_path) == {"libemg-lstm_cnn"}
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == ["libemg-lstm_cnn.json"]  # no partial file
    assert [j.name for j in pending(jobs, tmp_path)] == ["libemg-lstm_cnn-seed1"]


def test_a_job_is_a_record_of_plain_values() -> None:
    job = Job("db5-s1-lstm-fast_b-cross", "pretrain", "db5", 1, model="lstm",
              config={"recipe": "fast_b", "train_subjects": [4, 7, 8, 9]})
    assert Job.from_dict(json.loads(json.dumps(job.as_dict()))) == job
    with pytest.raises(SweepError, match="unknown option.*'epoch'"):
        Job("x", "model", "db1", 1, model="lstm_cnn", config={"epoch": 3})
    with pytest.raises(SweepError, match="takes no model"):
        Job("x", "baselines", "db1", 1, model="lstm_cnn")


def test_a_job_cannot_start_from_one_that_runs_after_it_or_left_no_model(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="starts from job grip-v2-lstm, which has not finished"):
        run_sweep([JOBS[2], JOBS[0]], tmp_path, LocalExecutor())
    save_result(tmp_path, {**JOBS[0].as_dict(), "metrics": {}}, None)  # a result whose checkpoint is gone
    with pytest.raises(SweepError, match="grip-v2-lstm.pt is missing; remove .*grip-v2-lstm.json"):
        run_sweep([JOBS[2]], tmp_path, LocalExecutor())
