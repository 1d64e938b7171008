"""Classical baselines on the same split as the deep models.

Classification: LDA and random forest on time-domain features. The features come from the
stock ``features`` node (``emgflow.nodes.features.extract``) placed where the image node sits in the
deep model's pipeline, so windows, hops and labels are identical.

Regression: ridge and the LE-ConvMN paper's sparse Gaussian process, both reading the current
RMS of every electrode (the newest frame of each long exposure), so rows and targets are the
model's own.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .datasets import Subject, Windows, classification_windows, windows_from

BASELINES = ("lda", "rf")
REGRESSION_BASELINES = ("ridge", "spgp")
SPGP_INDUCING = 100
"""Inducing points per joint (the seed's M = 100)."""
SPGP_STEPS = 150
"""Adam steps on the marginal likelihood (lr 0.05). DB5 subject 3: loss 0.648 after 150 steps, 0.636
after 250, test CC 0.820 after 150 and after 300."""

FEATURES_FOR: dict[str, dict[str, Any]] = {
    # DB1 envelopes are never negative, so ZC is meaningless there; RMS and VAR replace it.
    "ninapro_db1": {"features": ["MAV", "WL", "RMS", "VAR"], "device": "ninapro_db1"},
    "myo": {"features": ["HTD"], "device": "myo"},
}


def feature_pipeline(pipeline: list[dict[str, Any]], dataset_name: str) -> list[dict[str, Any]]:
    """``pipeline`` with its image node replaced by the ``features`` node of the same window and hop."""
    image = pipeline[-1]
    device = "ninapro_db1" if dataset_name == "db1" else "myo"
    return list(pipeline[:-1]) + [{"type": "features", "window": image["window"], "step": image["step"],
                                   **FEATURES_FOR[device]}]


def make(name: str, seed: int = 0) -> Any:
    """An unfitted scikit-learn baseline (features standardised with training statistics)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "lda":
        return make_pipeline(StandardScaler(), LinearDiscriminantAnalysis())
    if name == "rf":
        return make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=200, min_samples_leaf=2,
                                                                      random_state=seed, n_jobs=1))
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")


def fit_proba(name: str, train: Windows, test: Windows, n_classes: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """Fit on ``train`` rows; return (test class probabilities ``(n, n_classes)``, train accuracy)."""
    model = make(name, seed)
    model.fit(train.x, train.label)
    proba = np.zeros((len(test), n_classes))
    proba[:, model.classes_] = model.predict_proba(test.x)
    return proba, float(model.score(train.x, train.label))


def run_baselines(subj: Subject, pipeline: list[dict[str, Any]], train_step: int = 5, seed: int = 0,
                  names: tuple[str, ...] = BASELINES) -> dict[str, dict[str, Any]]:
    """Score each baseline on the subject's test repetitions with the model pipeline's windows.

    The image node at the end of ``pipeline`` is replaced by the ``features`` node with the
    same window and hop; training windows use ``train_step`` as the deep models do. Baselines
    select nothing, so they train on every training repetition, validation ones included.
    """
    from .evaluate import classification_metrics

    feats = feature_pipeline(pipeline, subj.spec.name)
    w = classification_windows(subj, feats, train_step, pipeline[-1]["step"], seed)
    names_ = subj.class_names()
    out = {}
    for name in names:
        proba, train_acc = fit_proba(name, w["fit"], w["test"], len(names_), seed)
        metrics = classification_metrics(proba, w["test"], len(names_), names_)
        metrics["train_acc"] = train_acc
        metrics["features"] = feats[-1]
        out[name] = metrics
    return out


# --- regression ---------------------------------------------------------------------------------

Steps = Callable[[int, int], None]
"""Called with (steps done, steps in all) while a baseline fits."""


def fit_spgp(x: np.ndarray, y: np.ndarray, *, inducing: int = SPGP_INDUCING, steps: int = SPGP_STEPS,
             seed: int = 0, progress: Steps | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Fit one sparse GP per column of ``y`` on inputs ``x`` ``(n, d)``; return the predictor of the means.

    GPyTorch's SGPR (Titsias' variational bound, ``InducingPointKernel``) with a scaled SE-ARD
    kernel, inducing points started on random training rows and learnt with the hyperparameters.
    The seed used Snelson's FITC, which differs only in the diagonal correction of the same
    low-rank approximation. Inputs and targets are standardised with the training statistics.
    """
    import gpytorch
    import torch

    class SparseGP(gpytorch.models.ExactGP):
        def __init__(self, xt: torch.Tensor, yt: torch.Tensor, lik: Any, z: torch.Tensor) -> None:
            super().__init__(xt, yt, lik)
            self.mean = gpytorch.means.ConstantMean()
            se = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=xt.shape[1]))
            self.covar = gpytorch.kernels.InducingPointKernel(se, inducing_points=z, likelihood=lik)

        def forward(self, v: torch.Tensor) -> Any:
            return gpytorch.distributions.MultivariateNormal(self.mean(v), self.covar(v))

    x_mean, x_std = x.mean(0), x.std(0).clip(1e-12)
    y_mean, y_std = y.mean(0), y.std(0).clip(1e-12)
    xt = torch.from_numpy((x - x_mean) / x_std).double()
    rng = np.random.default_rng(seed)
    models = []
    for j in range(y.shape[1]):
        torch.manual_seed(seed + j)
        yt = torch.from_numpy((y[:, j] - y_mean[j]) / y_std[j]).double()
        lik = gpytorch.likelihoods.GaussianLikelihood()
        z = xt[rng.choice(len(xt), min(inducing, len(xt)), replace=False)].clone()
        gp = SparseGP(xt, yt, lik, z).double()
        gp.train()
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, gp)
        opt = torch.optim.Adam(gp.parameters(), lr=0.05)
        for i in range(steps):
            opt.zero_grad()
            (-mll(gp(xt), yt)).backward()
            opt.step()
            if progress is not None:
                progress(j * steps + i + 1, y.shape[1] * steps)
        gp.eval()
        models.append(gp)

    def predict(new: np.ndarray) -> np.ndarray:
        v = torch.from_numpy((new - x_mean) / x_std).double()
        with torch.no_grad():
            return np.stack([gp(v).mean.numpy() for gp in models], 1) * y_std + y_mean

    return predict


def fit_regression(name: str, x: np.ndarray, y: np.ndarray, seed: int = 0,
                   progress: Steps | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Fit a named regression baseline on ``(x, y)``; return its predictor (rows -> ``(rows, outputs)``)."""
    if name == "spgp":
        return fit_spgp(x, y, seed=seed, progress=progress)
    if name == "ridge":
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, y)
        return lambda new: ridge.predict(new).reshape(len(new), -1)  # scikit-learn drops a single output's axis
    raise ValueError(f"unknown regression baseline {name!r}; known: {', '.join(REGRESSION_BASELINES)}")


def run_regression_baselines(subj: Subject, pipeline: list[dict[str, Any]], seed: int = 0,
                             names: tuple[str, ...] = REGRESSION_BASELINES,
                             progress: Steps | None = None) -> dict[str, dict[str, Any]]:
    """Score each regression baseline on the subject's test repetitions, trained on every other one.

    ``pipeline`` is the model's (ending in ``long_exposure``); the baselines read the newest RMS
    frame of each exposure, the current RMS per electrode, as the seed's SPGP did.
    """
    from .evaluate import regression_metrics

    spec = subj.spec
    if pipeline[-1]["type"] != "long_exposure":
        raise ValueError(f"regression baselines need a pipeline ending in long_exposure, not {pipeline[-1]['type']}")
    w = windows_from(subj.recordings, pipeline, target=spec.target, target_columns=spec.target_columns)
    x = np.asarray(w.x[:, :, -1], dtype=np.float64)
    test = np.isin(w.repetition, spec.test)
    out = {}
    for name in names:
        predict = fit_regression(name, x[~test], w.target[~test].astype(np.float64), seed, progress)
        out[name] = {**regression_metrics(predict(x[test]), w.target[test], spec.target_names),
                     "features": "current RMS per electrode (newest frame of each exposure)"}
    return out
