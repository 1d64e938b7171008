"""Next session without starting over: ``--init`` adapts a checkpoint as ``--adapt`` says, keeps its lineage,
refuses a checkpoint of another model, and recovers a session whose electrodes all changed gain."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emgflow.ml import checkpoint  # noqa: E402
from emgflow.ml.adapt import ADAPT_LR_SCALE  # noqa: E402
from emgflow.ml.config import TrainConfig  # noqa: E402
from emgflow.ml.datasets import DATASETS, classification_windows, dataset, load_subject  # noqa: E402
from emgflow.ml.deploy import export  # noqa: E402
from emgflow.ml.evaluate import evaluate  # noqa: E402
from emgflow.ml.fit import input_stats  # noqa: E402
from emgflow.ml.recipes import RECIPES  # noqa: E402
from emgflow.ml.train import train_model  # noqa: E402
from emgflow.recordings import Recording, load  # noqa: E402

TINY = dict(model="lstm_cnn", hidden=8, wp=False, train_step=15, device="cpu")
GAINS = np.array([0.3, 3.0, 0.5, 2.0, 0.4, 2.5, 1.0, 0.6])
"""Electrode gains of the shifted session: the armband strapped on again, the skin conducting otherwise."""


@pytest.fixture(scope="module")
def yesterday(data_dir, tmp_path_factory):
    """Model A (tiny) of myo-readings session 12345-1, saved as a file (a few seconds)."""
    torch.set_num_threads(1)
    ckpt = train_model(TrainConfig(dataset="myo-readings", subject="12345-1", epochs=3, refit=False, **TINY))
    return checkpoint.save(ckpt, tmp_path_factory.mktemp("adapt") / "yesterday.pt")


@pytest.fixture
def shifted(monkeypatch):
    """``myo-readings-shifted``: the same recordings with every electrode's gain changed."""
    def read(path):
        rec = load(path)
        return Recording(rec.emg * GAINS, rec.rate, rec.streams, rec.channel_names, rec.source, rec.meta)

    monkeypatch.setitem(DATASETS, "myo-readings-shifted", dataclasses.replace(
        DATASETS["myo-readings"], name="myo-readings-shifted", reader=read))
    return "myo-readings-shifted"


def adapted(init, mode, dataset_name="myo-readings", subject="12345-2", **kw):
    return train_model(TrainConfig(dataset=dataset_name, subject=subject, init=init, adapt=mode, **TINY, **kw))


def fit_stats(ckpt, dataset_name="myo-readings", subject="12345-2"):
    """Input statistics of the windows the run adapted on (every non-test repetition)."""
    fit = classification_windows(load_subject(dataset(dataset_name), subject), ckpt["pipeline"], 15, 15)["fit"]
    assert len(fit) == ckpt["data"]["train_rows"]
    return input_stats(fit.x, (0, 2))


@pytest.mark.parametrize("mode", ["norm", "finetune", "both"])
def test_each_mode_changes_only_what_it_says(yesterday, mode):
    before = checkpoint.load(yesterday)
    ckpt = adapted(yesterday, mode, epochs=1)
    changed = {k for k, v in ckpt["state_dict"].items() if not torch.equal(v, before["state_dict"][k])}
    norm = {"norm.mean", "norm.std"}
    weights = set(before["state_dict"]) - norm
    assert changed == {"norm": norm, "finetune": weights, "both": weights | norm}[mode]
    if mode != "finetune":  # re-estimated from the new session's training windows alone
        mean, std = fit_stats(ckpt)
        torch.testing.assert_close(ckpt["state_dict"]["norm.mean"].flatten(), mean.flatten())
        torch.testing.assert_close(ckpt["state_dict"]["norm.std"].flatten(), std.flatten())
    tuned = [h for h in ckpt["history"] if h.get("adapt")]
    assert len(tuned) == (0 if mode == "norm" else 1) == len(ckpt["history"])
    if mode != "norm":
        assert ckpt["recipe"]["lr"] == pytest.approx(RECIPES["improved"]["lr"] * ADAPT_LR_SCALE)
        assert ckpt["recipe"]["epochs"] == 1 and ckpt["recipe"]["refit"] is False


def test_the_adapted_checkpoint_records_its_lineage(yesterday, tmp_path):
    first = checkpoint.save(adapted(yesterday, "norm"), tmp_path / "today.pt")
    again = adapted(first, "norm", subject="12345-3")
    origin = again["data"]["init"]
    assert origin["path"] == str(first) and origin["adapt"] == "norm" and origin["created"]
    assert origin["dataset"] == "myo-readings" and origin["subjects"] == ["12345-2"] and origin["train_reps"] == [1, 2]
    grand = origin["init"]  # what the checkpoint it started from started from
    assert grand["path"] == str(yesterday) and grand["subjects"] == ["12345-1"] and "init" not in grand
    assert again["data"]["subjects"] == ["12345-3"] and again["data"]["test_subject"] == "12345-3"


def test_a_checkpoint_of_another_model_or_channel_count_is_refused(yesterday, tmp_path):
    with pytest.raises(ValueError, match=r"cannot start from .*yesterday\.pt: it differs from this run in hidden: "
                                         r"checkpoint 8, this run 4"):
        train_model(TrainConfig(dataset="myo-readings", subject="12345-2", init=yesterday, **{**TINY, "hidden": 4}))
    with pytest.raises(ValueError, match=r"channels: checkpoint 8, this run 16.*n_outputs: checkpoint 8, this run 13"):
        train_model(TrainConfig(dataset="db5", subject=1, init=yesterday, **TINY))
    exported = export(yesterday, tmp_path / "yesterday.onnx")
    with pytest.raises(ValueError, match=r"yesterday\.onnx: an exported model holds no trainable weights"):
        train_model(TrainConfig(dataset="myo-readings", subject="12345-2", init=exported, **TINY))
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint not found"):
        train_model(TrainConfig(dataset="myo-readings", subject="12345-2", init=tmp_path / "missing.pt", **TINY))
    with pytest.raises(ValueError, match="adapt applies with --init and must be one of norm, finetune, both, full"):
        TrainConfig(dataset="myo-readings", subject="12345-2", adapt="norm", **TINY)
    with pytest.raises(ValueError, match="got 'rescale'"):
        TrainConfig(dataset="myo-readings", subject="12345-2", init=yesterday, adapt="rescale", **TINY)
    with pytest.raises(ValueError, match="members > 1 applies to training from scratch or --adapt full"):
        TrainConfig(dataset="myo-readings", subject="12345-2", init=yesterday, members=2, **TINY)


def test_adapting_recovers_a_session_whose_electrodes_changed_gain(yesterday, shifted):
    """Fixed seeds: every mode beats the unadapted model on the shifted session; with the normalisation
    re-estimated (norm, both) it comes back to within 0.05 of the model on the unshifted session."""
    before = checkpoint.load(yesterday)
    subject = "12345-1"
    own = evaluate(before, load_subject(dataset("myo-readings"), subject))["test_acc"]
    unadapted = evaluate(before, load_subject(dataset(shifted), subject))["test_acc"]
    assert unadapted < own - 0.1  # the shift hurts
    for mode in ("norm", "finetune", "both"):
        score = adapted(yesterday, mode, shifted, subject, epochs=2)["metrics"]["test_acc"]
        assert score > unadapted + 0.1, mode
        if mode != "finetune":
            assert score > own - 0.05, mode


def test_train_init_on_the_command_line(yesterday, tmp_path):
    from typer.testing import CliRunner

    from emgflow.cli.app import app

    runner = CliRunner()
    base = ["train", "--model", "lstm_cnn", "--hidden", "8", "--no-wp", "--train-step", "15", "--data",
            "myo-readings", "--subject", "12345-2", "--out", str(tmp_path / "today.pt")]
    res = runner.invoke(app, [*base, "--init", str(yesterday), "--epochs", "1"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps long lines
    assert "adapting the --init model: 1 epochs on this run's training repetitions" in text
    assert "adapt epoch 1/1 train loss" in text and f"adapted (finetune) from {yesterday}" in text  # the default
    assert checkpoint.load(tmp_path / "today.pt")["data"]["init"]["path"] == str(yesterday)
    res = runner.invoke(app, ["eval", str(tmp_path / "today.pt"), "--no-baselines", "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "loss.png").stat().st_size > 0
    res = runner.invoke(app, [*base, "--init", str(tmp_path / "missing.pt")])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())
    res = runner.invoke(app, [*base, "--hidden", "4", "--init", str(yesterday)])
    assert res.exit_code == 2 and "differs from this run in hidden: checkpoint 8, this run 4" in res.output
