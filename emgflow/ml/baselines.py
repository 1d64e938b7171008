"""Classical baselines on the same split: LDA and random forest on time-domain features.

The features come from the stock ``features`` node (``nodes.features.extract``) placed where the
image node sits in the deep model's pipeline, so windows, hops and labels are identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .datasets import Subject, Windows, classification_windows

BASELINES = ("lda", "rf")

FEATURES_FOR: dict[str, dict[str, Any]] = {
    # DB1 envelopes are never negative, so ZC is meaningless there; RMS and VAR replace it.
    "ninapro_db1": {"features": ["MAV", "WL", "RMS", "VAR"], "device": "ninapro_db1"},
    "myo": {"features": ["HTD"], "device": "myo"},
}


def feature_stage(window: int, step: int, device: str) -> dict[str, Any]:
    """The ``features`` node spec replacing the image node of a pipeline."""
    return {"type": "features", "window": window, "step": step, **FEATURES_FOR[device]}


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

    image = pipeline[-1]
    device = "ninapro_db1" if subj.spec.name == "db1" else "myo"
    feats = list(pipeline[:-1]) + [feature_stage(image["window"], image["step"], device)]
    w = classification_windows(subj, feats, train_step, image["step"], seed)
    names_ = subj.class_names()
    out = {}
    for name in names:
        proba, train_acc = fit_proba(name, w["fit"], w["test"], len(names_), seed)
        metrics = classification_metrics(proba, w["test"], len(names_), names_)
        metrics["train_acc"] = train_acc
        metrics["features"] = feats[-1]
        out[name] = metrics
    return out
