"""bench/train_all.py: seed repetition of the model jobs, cross-subject start points, the seed-averaged summary."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from emgflow.ml.sweep_summary import group, summarize

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def train_all():
    spec = importlib.util.spec_from_file_location("train_all", ROOT / "bench" / "train_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_jobs_repeat_per_seed_and_baselines_do_not(train_all) -> None:
    names = [j.name for j in train_all.jobs(True, (0, 3))]
    assert "db5-s1-convlstm-fast_b" in names and "db5-s1-convlstm-fast_b-seed3" in names
    assert names.count("db5-s1-reg_baselines") == 1
    assert all("-seed" not in j.name for j in train_all.jobs(True))  # seed 0 alone keeps the earlier names
    assert len(set(names)) == len(names)


def test_adapted_jobs_start_from_the_one_cross_subject_job(train_all) -> None:
    todo = train_all.jobs(False, (0, 1))
    pre = [j for j in todo if j.kind == "pretrain" and j.model == "convlstm"]
    assert len(pre) == 1 and not set(pre[0].config["train_subjects"]) & {j.subject for j in todo if j.dataset == "db5"}
    adapted = [j for j in todo if j.init == pre[0].name]
    assert sorted((j.subject, j.seed) for j in adapted) == [(1, 0), (1, 1), (3, 0), (3, 1), (5, 0), (5, 1)]
    assert {group(j.as_dict()) for j in adapted} == {"db5/convlstm/fast_b/adapted"}
    assert group(pre[0].as_dict()) == "db5/convlstm/fast_b/cross"
    assert todo.index(pre[0]) < min(todo.index(j) for j in adapted)  # the sweep runs a job after its start point


def _write(out: Path, name: str, subject: int, seed: int, cc: float) -> None:
    job = {"kind": "model", "dataset": "db5", "subject": subject, "model": "convlstm", "recipe": "fast_b",
           "seed": seed, "name": name, "metrics": {"cc": cc, "rmse": 1.0, "nrmse": 0.1}}
    (out / "jobs" / f"{name}.json").write_text(json.dumps(job))


def test_summary_averages_each_subjects_seeds_first(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    _write(tmp_path, "a", 1, 0, 0.80)
    _write(tmp_path, "b", 1, 1, 0.90)
    _write(tmp_path, "c", 1, 2, 0.70)
    _write(tmp_path, "d", 3, 0, 0.60)  # one seed only: counts once, like subject 1
    summary = summarize(tmp_path)
    cc = summary["groups"]["db5/convlstm/fast_b"]["cc"]
    assert summary["per_subject"]["db5/convlstm/fast_b"]["1"]["cc"] == pytest.approx(0.80)
    assert cc["mean"] == pytest.approx(0.70) and cc["n"] == 2 and cc["seeds"] == 3
    assert cc["seed_sd"] == pytest.approx(0.10)  # SD over subject 1's seeds (subject 3 has one)
    assert "2 x 3" in (tmp_path / "summary.md").read_text()
