"""Tiny models trained for a few steps on real recordings: learning, determinism, one-file checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emgflow.ml import checkpoint  # noqa: E402
from emgflow.ml.config import TrainConfig  # noqa: E402
from emgflow.ml.predict import predict_logits  # noqa: E402
from emgflow.ml.train import train_model  # noqa: E402


@pytest.fixture(scope="module")
def classifier(data_dir):
    """LSTM-CNN on DB1 S1, sparse training windows, 3 epochs (a few seconds)."""
    torch.set_num_threads(1)
    return train_model(TrainConfig(dataset="db1", subject=1, model="lstm_cnn", epochs=3, train_step=15, hidden=8,
                                   device="cpu"))


@pytest.fixture(scope="module")
def regressor(data_dir):
    """Stateful LSTM on DB5 S1 glove joints, 2 epochs."""
    torch.set_num_threads(1)
    return train_model(TrainConfig(dataset="db5", subject=1, model="lstm", epochs=2, hidden=16, device="cpu"))


def test_classifier_learns_and_reports_the_protocol(classifier):
    h = [row for row in classifier["history"] if not row.get("refit")]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    m = classifier["metrics"]
    assert m["test_acc"] > 1.5 / 13  # well above chance after three epochs
    assert 0 <= m["vote_acc"] <= 1 and m["segments"] == 3 * 13  # 12 movements + 1 rest per test repetition
    assert set(m["sliding_vote_acc"]) == {"5", "10", "20"}
    assert classifier["data"]["test_reps"] == [2, 5, 7] and classifier["data"]["val_reps"] == [10]
    assert set(classifier["data"]["train_reps"]).isdisjoint([2, 5, 7])


def test_refit_retrains_on_validation_reps_for_the_chosen_epochs(classifier):
    """Validation picks the epoch count; the kept model is retrained on train + validation reps."""
    h = classifier["history"]
    best = max(row["epoch"] for row in h if row.get("best") and not row.get("refit"))
    assert [row["epoch"] for row in h if row.get("refit")] == list(range(1, best + 1))
    assert classifier["data"]["train_reps"] == [1, 3, 4, 6, 8, 9, 10]
    assert classifier["stream"] == {"rate": 100 / 15, "shape": [2, 15, 20], "channels": 20}  # 1 Hz + 0.2 Hz


def test_train_accuracy_is_the_kept_model_on_its_training_windows(classifier):
    """Dropout and noise off: the checkpoint's model scored on the windows its last training read
    (after the refit: training and validation repetitions, every rest segment)."""
    from emgflow.ml.datasets import classification_windows, dataset, load_subject

    fit = classification_windows(load_subject(dataset("db1"), 1), classifier["pipeline"], 15, 15, 0,
                                 train_all_rest=True)["fit"]
    assert len(fit) == classifier["data"]["train_rows"]
    logits = predict_logits(checkpoint.model_from(classifier), fit.x, torch.device("cpu"))
    assert classifier["metrics"]["train_acc"] == pytest.approx(float((logits.argmax(1) == fit.label).mean()))


def test_progress_reports_say_which_member_and_phase(data_dir):
    torch.set_num_threads(1)
    reports = []
    ckpt = train_model(TrainConfig(dataset="db5", subject=1, model="lstm", members=2, epochs=2, hidden=8,
                                   device="cpu"), reports.append)
    rows = [r for r in reports if "batch" not in r]
    for member in (1, 2):
        select = [r["epoch"] for r in rows if r["member"] == member and r["phase"] == "select"]
        refit = [r for r in rows if r["member"] == member and r["phase"] == "refit"]
        assert select == [1, 2] and [r["epoch"] for r in refit] == list(range(1, len(refit) + 1))
        assert refit and {r["epochs"] for r in refit} == {len(refit)} and {r["members"] for r in refit} == {2}
    assert len(rows) == len(ckpt["history"])  # one report per history row
    batches = [r for r in reports if "batch" in r]
    assert batches and all(0 < r["batch"] <= r["batches"] and "phase" in r and "member" in r for r in batches)


def test_regressor_learns_and_scores_joints_in_glove_units(regressor):
    h = [row for row in regressor["history"] if not row.get("refit")]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    m = regressor["metrics"]
    assert len(m["per_joint"]) == 10 and m["cc"] > 0.2
    assert 0 < m["nrmse"] < 1 and m["rmse"] > 1  # de-normalised: raw glove units, not z-scores
    assert len(regressor["target_mean"]) == 10


def test_regressor_refit_keeps_test_reps_out(regressor):
    """The regressor refits on train + validation reps for the epoch count validation chose."""
    h = regressor["history"]
    best = max(row["epoch"] for row in h if row.get("best") and not row.get("refit"))
    assert [row["epoch"] for row in h if row.get("refit")] == list(range(1, best + 1))
    assert regressor["data"]["train_reps"] == [1, 3, 4, 6] and regressor["data"]["test_reps"] == [2, 5]


def test_checkpoint_is_one_weights_only_file(classifier, tmp_path):
    path = checkpoint.save(classifier, tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)  # plain types and tensors only
    assert raw["format"] == checkpoint.FORMAT and raw["pipeline"] == classifier["pipeline"]
    assert raw["input"] == {"rate": 100.0, "channels": 10, "channel_names": [f"ch{i}" for i in range(10)]}
    assert "norm.mean" in raw["state_dict"]
    x = np.random.default_rng(0).random((5, 2, 15, 20), dtype=np.float32)
    a = predict_logits(checkpoint.model_from(classifier), x, torch.device("cpu"))
    b = predict_logits(checkpoint.model_from(checkpoint.load(path)), x, torch.device("cpu"))
    np.testing.assert_array_equal(a, b)


def test_checkpoint_refuses_a_mismatched_stream(classifier, tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="16 channels, the model expects 20"):
        checkpoint.check_stream(classifier, rate=None, channels=16)
    with pytest.raises(checkpoint.CheckpointError, match=r"13\.3333 Hz, the model expects 6\.66667 Hz"):
        checkpoint.check_stream(classifier, rate=200 / 15)
    with pytest.raises(checkpoint.CheckpointError, match="not a regress model"):
        checkpoint.check_stream(classifier, rate=None, task="regress")
    checkpoint.check_stream(classifier, rate=100 / 15, channels=20, shape=(2, 15, 20), task="classify")
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(checkpoint.CheckpointError, match="not an emgflow model checkpoint"):
        checkpoint.load(bad)


def test_same_seed_same_model(data_dir):
    torch.set_num_threads(1)
    cnn = dict(dataset="db1", subject=2, model="cnn", epochs=1, train_step=30, device="cpu")
    runs = [train_model(TrainConfig(seed=7, **cnn)) for _ in range(2)]
    for k, v in runs[0]["state_dict"].items():
        assert torch.equal(v, runs[1]["state_dict"][k]), k
    other = train_model(TrainConfig(seed=8, **cnn))
    assert not torch.equal(other["state_dict"]["cnn.net.1.weight"], runs[0]["state_dict"]["cnn.net.1.weight"])


def test_highpass_leads_the_raw_emg_pipeline_and_is_refused_on_envelopes():
    from emgflow.ml.datasets import dataset
    from emgflow.ml.models import default_pipeline

    pipe = default_pipeline(dataset("coteallard"), "lstm_cnn", rate=200.0, paper=False, highpass=20.0)
    assert pipe[0] == {"type": "highpass", "cutoff": 20.0, "order": 4}
    assert pipe[1:] == default_pipeline(dataset("coteallard"), "lstm_cnn", rate=200.0, paper=False)
    with pytest.raises(ValueError, match="envelopes"):
        default_pipeline(dataset("db1"), "lstm_cnn", rate=100.0, paper=False, highpass=20.0)


def test_recipe_overrides_apply_as_given_none_included():
    from emgflow.ml.recipes import RECIPES, recipe

    r = recipe("improved", noise_snr_db=None, epochs=3)
    assert r["noise_snr_db"] is None and r["epochs"] == 3  # None turns the noise off, it is not "unset"
    assert RECIPES["improved"]["noise_snr_db"] == 25.0  # the table itself is untouched
    with pytest.raises(ValueError, match="no option"):
        recipe("improved", noise=None)


def test_layout_readout_and_attention_are_refused_for_models_without_them():
    """Refused when the run is configured, before any data is loaded."""
    with pytest.raises(ValueError, match="layout applies to convlstm"):
        TrainConfig(dataset="db5", subject=1, model="lstm", layout="image")
    with pytest.raises(ValueError, match="readout applies to convlstm"):
        TrainConfig(dataset="db5", subject=1, model="lstm", readout="dense")
    with pytest.raises(ValueError, match="attention applies to lstm_cnn"):
        TrainConfig(dataset="db1", subject=1, model="cnn", attention="attentional")
    with pytest.raises(ValueError, match="readout must be one of maps, dense, got 'pool'"):
        TrainConfig(dataset="db5", subject=1, model="convlstm", readout="pool")


def test_seed_ensemble_members_are_the_single_models_of_consecutive_seeds(data_dir, tmp_path):
    """``members=2`` holds exactly the models seeds 3 and 4 give alone; its output is their mean."""
    from emgflow.ml.datasets import dataset, load_subject, windows_from
    from emgflow.ml.predict import predict_stream

    torch.set_num_threads(1)
    kw = dict(epochs=1, refit=False, hidden=8, device="cpu")
    ens = train_model(TrainConfig(dataset="db5", subject=1, model="lstm", members=2, seed=3, **kw))
    singles = [train_model(TrainConfig(dataset="db5", subject=1, model="lstm", seed=s, **kw)) for s in (3, 4)]
    loaded = checkpoint.load(checkpoint.save(ens, tmp_path / "ens.pt"))
    net = checkpoint.model_from(loaded)
    assert loaded["config"]["members"] == 2 and len(net.members) == 2
    for member, single in zip(net.members, singles):
        for key, value in single["state_dict"].items():
            torch.testing.assert_close(member.state_dict()[key], value)
    assert {row["member"] for row in loaded["history"]} == {0.0, 1.0}
    spec = dataset("db5")
    w = windows_from(load_subject(spec, 1).recordings[:1], loaded["pipeline"], target=spec.target,
                     target_columns=spec.target_columns)
    w = w.take(np.arange(len(w)) < 300)
    cpu = torch.device("cpu")
    want = np.mean([predict_stream(checkpoint.model_from(s), w, cpu) for s in singles], axis=0)
    np.testing.assert_allclose(predict_stream(net, w, cpu), want, rtol=1e-5, atol=1e-6)


def test_classifier_ensemble_members_are_the_single_models_and_average_their_probabilities(data_dir, tmp_path):
    from emgflow.ml.datasets import dataset, load_subject, windows_from

    torch.set_num_threads(1)
    kw = dict(epochs=1, refit=False, train_step=15, hidden=4, device="cpu")
    ens = train_model(TrainConfig(dataset="db1", subject=3, model="lstm_cnn", members=2, seed=3, **kw))
    singles = [train_model(TrainConfig(dataset="db1", subject=3, model="lstm_cnn", seed=s, **kw)) for s in (3, 4)]
    net = checkpoint.model_from(checkpoint.load(checkpoint.save(ens, tmp_path / "ens.pt")))
    for member, single in zip(net.members, singles):
        for key, value in single["state_dict"].items():
            torch.testing.assert_close(member.state_dict()[key], value)
    x = windows_from(load_subject(dataset("db1"), 3).recordings[:1], ens["pipeline"]).x[:400]
    cpu = torch.device("cpu")
    proba = [torch.softmax(torch.from_numpy(predict_logits(checkpoint.model_from(s), x, cpu)), 1) for s in singles]
    got = torch.softmax(torch.from_numpy(predict_logits(net, x, cpu)), 1)
    torch.testing.assert_close(got, torch.stack(proba).mean(0), rtol=1e-5, atol=1e-6)


def test_init_full_starts_every_training_from_the_checkpoint_but_rescales_the_input(regressor, tmp_path):
    path = checkpoint.save(regressor, tmp_path / "other.pt")
    frozen = train_model(TrainConfig(dataset="db5", subject=3, model="lstm", epochs=1, lr=0.0, hidden=16, init=path,
                                     adapt="full", device="cpu"))
    before, after = regressor["state_dict"], frozen["state_dict"]
    assert [k for k in after if not torch.equal(after[k], before[k])] == ["norm.mean", "norm.std"]
    assert [h.get("refit") for h in frozen["history"]] == [None, 1.0]  # the whole recipe: select, then refit
    created = checkpoint.load(path)["created"]
    assert frozen["data"]["init"] == {"path": str(path), "created": created, "adapt": "full", "dataset": "db5",
                                      "mode": "subject", "subjects": ["1"], "test_subject": "1",
                                      "train_reps": regressor["data"]["train_reps"]}
    with pytest.raises(ValueError, match=r"differs from this run in hidden: checkpoint 16, this run 8"):
        train_model(TrainConfig(dataset="db5", subject=3, model="lstm", hidden=8, init=path, device="cpu"))


def test_cross_mode_trains_on_the_chosen_pool_only(data_dir):
    ckpt = train_model(TrainConfig(dataset="db5", subject=1, model="lstm", mode="cross", train_subjects=[3], epochs=1,
                                   refit=False, hidden=8, device="cpu"))
    assert ckpt["data"]["subjects"] == ["3"] and ckpt["data"]["test_subject"] == "1"
    for bad in ({"mode": "cross", "train_subjects": [1, 3]}, {"mode": "subject", "train_subjects": [3]}):
        with pytest.raises(ValueError, match="train_subjects applies to cross mode"):
            TrainConfig(dataset="db5", subject=1, model="lstm", **bad)


def test_an_ensemble_needs_a_member():
    with pytest.raises(ValueError, match="members must be >= 1, got 0"):
        TrainConfig(dataset="db1", subject=1, model="lstm_cnn", members=0)


def test_a_regressor_adapted_by_norm_keeps_the_targets_it_was_trained_on(regressor, tmp_path):
    """No training: the outputs are still z-scores of the checkpoint's targets, whatever today's glove reads."""
    path = checkpoint.save(regressor, tmp_path / "yesterday.pt")
    today = train_model(TrainConfig(dataset="db5", subject=3, model="lstm", hidden=16, init=path, adapt="norm",
                                    device="cpu"))
    before, after = regressor["state_dict"], today["state_dict"]
    assert [k for k in after if not torch.equal(after[k], before[k])] == ["norm.mean", "norm.std"]
    assert today["target_mean"] == regressor["target_mean"] and today["target_std"] == regressor["target_std"]
    assert today["history"] == [] and today["data"]["init"]["adapt"] == "norm"
