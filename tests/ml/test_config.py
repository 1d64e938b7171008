"""The run configuration and the architecture table: one place each, read by the CLI, YAML and training."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from emgflow.ml.config import OPTIONS, TrainConfig  # noqa: E402
from emgflow.ml.models import ARCHITECTURES, Architecture, build, default_pipeline, model_config  # noqa: E402
from emgflow.ml.networks import Cnn  # noqa: E402
from emgflow.ml.pipelines import envelope_images  # noqa: E402

ML = Path(__file__).resolve().parents[2] / "emgflow" / "ml"


def test_text_options_are_read_into_typed_fields():
    run = TrainConfig.from_options({"model": "convlstm", "dataset": "db5", "subject": "1", "mode": "cross",
                                    "train_subjects": "3, 4", "hidden": "64,32", "init": "m.pt"})
    assert run.subject == 1 and run.train_subjects == [3, 4] and run.hidden == [64, 32] and run.init == Path("m.pt")
    assert TrainConfig.from_options({"model": "lstm", "dataset": "db5", "subject": 3, "hidden": "8"}).hidden == 8
    assert TrainConfig.from_options({"model": "cnn", "dataset": "coteallard", "subject": "Male0",
                                     "train_subjects": None}).subject == "Male0"


def test_bad_options_are_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['epoch'\]; known: model, dataset, subject"):
        TrainConfig.from_options({"model": "cnn", "dataset": "db1", "subject": 1, "epoch": 3})
    with pytest.raises(ValueError, match="db1 has no subject '5'"):
        TrainConfig.from_options({"model": "cnn", "dataset": "db1", "subject": "5"})
    with pytest.raises(ValueError, match="unknown model 'mlp'; known: lstm_cnn, cnn, convlstm, lstm"):
        TrainConfig(model="mlp", dataset="db1", subject=1)
    with pytest.raises(ValueError, match="mode must be 'subject' or 'cross', got 'pooled'"):
        TrainConfig(model="cnn", dataset="db1", subject=1, mode="pooled")


def test_recipe_overrides_are_only_the_fields_given():
    assert TrainConfig(model="cnn", dataset="db1", subject=1).recipe_overrides() == {}
    run = TrainConfig(model="cnn", dataset="db1", subject=1, epochs=2, refit=False, all_rest=True)
    assert run.recipe_overrides() == {"epochs": 2, "refit": False, "train_all_rest": True}


def test_the_train_command_takes_every_field_as_a_flag():
    from emgflow.cli.train import train

    params = inspect.signature(train).parameters
    assert sorted(params) == sorted(("out", "config") + OPTIONS)
    assert all(params[name].default is None for name in OPTIONS)  # unset: --config or the field default fills it


def test_a_new_architecture_is_one_table_entry(monkeypatch):
    """An entry (plus its class) is all training, checkpoints and the validation need."""
    entry = Architecture("classify", lambda c: Cnn(c["frames"], c["channels"], c["planes"], c["n_outputs"]),
                         lambda given, paper: {"width": 3}, envelope_images)
    monkeypatch.setitem(ARCHITECTURES, "plain_cnn", entry)
    run = TrainConfig(model="plain_cnn", dataset="db1", subject=1)
    assert run.model == "plain_cnn"
    with pytest.raises(ValueError, match="attention applies to lstm_cnn, not plain_cnn"):
        TrainConfig(model="plain_cnn", dataset="db1", subject=1, attention="context")
    cfg = model_config("plain_cnn", n_outputs=4, channels=10, frames=15, **entry.defaults({}, False))
    assert cfg["width"] == 3 and build(cfg)(torch.zeros(2, 1, 15, 10)).shape == (2, 4)
    from emgflow.ml.datasets import dataset

    assert default_pipeline(dataset("db1"), "plain_cnn", rate=100.0, paper=True)[-1]["type"] == "emg_image"


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_builds_from_its_defaults_and_fits_its_pipeline(name):
    arch = ARCHITECTURES[name]
    from emgflow.ml.datasets import dataset

    spec = dataset("db1" if arch.task == "classify" else "db5")
    pipe = default_pipeline(spec, name, rate=100.0 if arch.task == "classify" else 200.0, paper=False)
    last = pipe[-1]
    for paper in (True, False):
        if arch.task == "classify":
            planes = 2 if last["type"] == "wp_image" else 1
            cfg = model_config(name, n_outputs=13, channels=20, frames=last["window"], planes=planes,
                               **arch.defaults({}, paper))
            assert build(cfg)(torch.zeros(3, planes, last["window"], 20)).shape == (3, 13)
        else:
            cfg = model_config(name, n_outputs=10, channels=16, frames=last["window"], step=last["step"],
                               **arch.defaults({}, paper))
            y, state = build(cfg)(torch.zeros(3, 16, last["window"]), [])
            assert y.shape == (3, 10) and state
    assert (last["type"] == "long_exposure") == (arch.task == "regress")


def test_no_module_of_the_ml_package_imports_one_that_imports_it_back():
    imports = {}
    for path in ML.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        imports[path.stem] = names

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in imports.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert {"train", "evaluate", "predict", "models"} <= set(imports)
    assert [m for m in imports if m in reach(m)] == []
