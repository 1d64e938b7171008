"""Classical baselines on the same split: LDA and random forest on time-domain features.

The features come from the stock ``features`` node (``nodes.features.extract``) placed where the
image node sits in the deep model's pipeline, so windows, hops and labels are identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .datasets import Windows

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


def fit_predict(name: str, train: Windows, test: Windows, seed: int = 0) -> tuple[np.ndarray, float]:
    """Fit on ``train`` rows and return (test predictions, train accuracy)."""
    model = make(name, seed)
    model.fit(train.x, train.label)
    return model.predict(test.x), float(model.score(train.x, train.label))
