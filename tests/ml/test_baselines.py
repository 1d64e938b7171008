"""Regression baselines: the sparse GP learns a non-linear map, and both baselines score the model's own rows."""

from __future__ import annotations

import functools

import numpy as np
import pytest

pytest.importorskip("gpytorch")

from emgflow.ml import baselines  # noqa: E402
from emgflow.ml.datasets import dataset, load_subject  # noqa: E402
from emgflow.ml.evaluate import correlation  # noqa: E402
from emgflow.ml.models import default_pipeline  # noqa: E402


def test_sparse_gp_learns_what_a_linear_model_cannot():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(600, 2))
    y = np.stack([np.sin(2 * x[:, 0]), x[:, 1] ** 2], 1) + 0.05 * rng.standard_normal((600, 2))
    train, test = slice(0, 400), slice(400, None)
    gp = baselines.fit_spgp(x[train], y[train], inducing=30, steps=100)(x[test])
    ridge = baselines.fit_regression("ridge", x[train], y[train])(x[test])
    assert correlation(gp, y[test]).min() > 0.95
    assert correlation(ridge, y[test]).min() < 0.5  # x1 ** 2 is invisible to a linear model


@pytest.mark.parametrize("name, subject", [("db5", 3), ("grip", "v8")])
def test_regression_baselines_score_the_test_repetitions(data_dir, monkeypatch, name, subject):
    monkeypatch.setattr(baselines, "fit_spgp", functools.partial(baselines.fit_spgp, inducing=20, steps=20))
    spec = dataset(name)
    subj = load_subject(spec, subject)
    pipe = default_pipeline(spec, "convlstm", rate=subj.rate, paper=False)
    steps = []
    out = baselines.run_regression_baselines(subj, pipe, progress=lambda done, total: steps.append((done, total)))
    assert set(out) == {"ridge", "spgp"}
    assert steps[-1] == (20 * len(spec.target_names),) * 2  # one GP per output, 20 steps each
    for m in out.values():
        assert set(m["per_joint"]) == set(spec.target_names)
        assert m["cc"] > 0.4 and 0 < m["nrmse"] < 0.3
    with pytest.raises(ValueError, match="long_exposure"):
        baselines.run_regression_baselines(subj, pipe[:1])
