"""Time-domain EMG features over sliding windows: ``extract()`` offline, the ``features`` node online.

Windows are ``(n_windows, window, channels)``. The output row of a window is channel-major:
``[ch0 f0, ch0 f1, ..., ch1 f0, ...]``, where AR contributes ``ar_order`` columns ``AR1..ARp``;
``feature_names()`` spells the layout out and the node puts it in ``meta["features"]`` of its
first message (and in the output StreamInfo names).

Definitions follow LibEMG where it has the feature (so its models and results carry over):
MAV mean |x|; RMS; WL sum |dx|; ZC strict sign changes whose step |dx| >= zc_threshold;
SSC count of (x[i]-x[i-1])(x[i]-x[i+1]) >= ssc_threshold; VAR population variance; IAV sum |x|;
WAMP count |dx| > wamp_threshold; LD (log detector) exp(mean(log(|x| + 1))); LS second sample
L-moment; MFL log10(WL) (a flat window gives log10 of the smallest float, not -inf); MSR |mean(sqrt(x))| with sqrt of negatives imaginary; Hjorth ACT, MOB,
COMP. AR coefficients are Yule-Walker (autocorrelation method, Levinson-Durbin) for
``x[n] = sum_k a_k x[n-k] + e[n]``; LibEMG uses Burg's method (librosa), which differs slightly.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.params import Param
from emgflow.streaming import WindowedNode


GROUPS: dict[str, tuple[str, ...]] = {
    "HTD": ("MAV", "ZC", "SSC", "WL"),
    "TDAR": ("MAV", "ZC", "SSC", "WL", "AR"),
    "LS4": ("LS", "MFL", "MSR", "WAMP"),
    "HJORTH": ("ACT", "MOB", "COMP"),
}

DEVICE_THRESHOLDS: dict[str, dict[str, float]] = {
    # Myo int8 counts. At rest (Ninapro DB5 S1 rest, Cote-Allard Male0 neutral) the median |dx| is
    # 2 counts and its 90th percentile 7-8 counts: WAMP counts steps above that noise, ZC ignores
    # crossings of under 2 counts, SSC needs both slopes of about 2 counts.
    "myo": {"zc": 2.0, "ssc": 4.0, "wamp": 8.0},
    # Signals in volts-like units near [-1, 1]: LibEMG's defaults.
    "normalized": {"zc": 0.0, "ssc": 0.0, "wamp": 2e-3},
    # Ninapro DB1 Otto Bock envelopes (0..4.7, never negative, so ZC is 0): rest |dx| 90th
    # percentile is 0.005 on S1.
    "ninapro_db1": {"zc": 0.0, "ssc": 1e-5, "wamp": 5e-3},
}


def expand(features: Sequence[str] | str) -> tuple[str, ...]:
    """Feature names from names and group names (HTD, TDAR, LS4, HJORTH), duplicates removed."""
    names = [features] if isinstance(features, str) else list(features)
    out: list[str] = []
    for name in names:
        key = str(name).upper()
        for feat in GROUPS.get(key, (key,)):
            if feat not in FEATURES:
                known = ", ".join(list(FEATURES) + list(GROUPS))
                raise ValueError(f"unknown feature {name!r} (known: {known})")
            if feat not in out:
                out.append(feat)
    return tuple(out)


def feature_names(features: Sequence[str] | str, channels: int | Sequence[str], ar_order: int = 4) -> list[str]:
    """Column names of ``extract``'s output, e.g. ``ch0:MAV``, in its channel-major order."""
    chans = [f"ch{c}" for c in range(channels)] if isinstance(channels, int) else list(channels)
    per_channel: list[str] = []
    for feat in expand(features):
        per_channel += [f"AR{k}" for k in range(1, ar_order + 1)] if feat == "AR" else [feat]
    return [f"{c}:{f}" for c in chans for f in per_channel]


def extract(windows: np.ndarray, features: Sequence[str] | str = "HTD", *, zc_threshold: float = 0.0,
            ssc_threshold: float = 0.0, wamp_threshold: float = 2e-3, ar_order: int = 4) -> np.ndarray:
    """Features of each window: ``(n, window, channels) -> (n, channels * n_columns)`` float64."""
    w = np.moveaxis(np.asarray(windows, dtype=np.float64), 1, 2)  # (n, channels, window)
    if w.shape[-1] < 3:
        raise ValueError(f"windows must be at least 3 samples long for these features (got {w.shape[-1]})")
    ctx = _Context(w, zc_threshold, ssc_threshold, wamp_threshold, ar_order)
    cols = []
    for feat in expand(features):
        value = FEATURES[feat](ctx)
        cols.append(value if value.ndim == 3 else value[..., None])
    return np.concatenate(cols, axis=-1).reshape(len(w), -1)


class _Context:
    """The window batch plus intermediates several features share (first difference, variance)."""

    def __init__(self, w: np.ndarray, zc: float, ssc: float, wamp: float, ar_order: int) -> None:
        self.w, self.zc, self.ssc, self.wamp, self.ar_order = w, zc, ssc, wamp, ar_order
        self.d = np.diff(w, axis=-1)
        self.abs_d = np.abs(self.d)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0 (a flat channel has no mobility, not NaN)."""
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _zc(c: _Context) -> np.ndarray:
    x0, x1 = c.w[..., :-1], c.w[..., 1:]
    return np.sum((x0 * x1 < 0) & (c.abs_d >= c.zc), axis=-1).astype(np.float64)


def _ssc(c: _Context) -> np.ndarray:
    return np.sum(-c.d[..., :-1] * c.d[..., 1:] >= c.ssc, axis=-1).astype(np.float64)


def _ls(c: _Context) -> np.ndarray:
    n = c.w.shape[-1]
    ranks = np.arange(n) / (n - 1)  # (i - 1) / (n - 1) for the i-th smallest, i = 1..n
    b1 = np.mean(np.sort(c.w, axis=-1) * ranks, axis=-1)
    return 2 * b1 - np.mean(c.w, axis=-1)


def _msr(c: _Context) -> np.ndarray:
    pos = np.sum(np.sqrt(np.clip(c.w, 0, None)), axis=-1)
    neg = np.sum(np.sqrt(np.clip(-c.w, 0, None)), axis=-1)
    return np.hypot(pos, neg) / c.w.shape[-1]


def _mob(c: _Context) -> np.ndarray:
    return np.sqrt(_safe_div(np.var(c.d, axis=-1), np.var(c.w, axis=-1)))


def _comp(c: _Context) -> np.ndarray:
    dd = np.diff(c.d, axis=-1)
    mob_d = np.sqrt(_safe_div(np.var(dd, axis=-1), np.var(c.d, axis=-1)))
    return _safe_div(mob_d, _mob(c))


def _ar(c: _Context) -> np.ndarray:
    n = c.w.shape[-1]
    if c.ar_order >= n:
        raise ValueError(f"ar_order={c.ar_order} needs windows longer than {c.ar_order} samples (got {n})")
    r = np.stack([np.sum(c.w[..., :n - k] * c.w[..., k:], axis=-1) for k in range(c.ar_order + 1)], axis=-1) / n
    return levinson(r, c.ar_order)


def levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Yule-Walker AR coefficients from autocorrelations ``r[..., 0..order]``, batched.

    Returns ``a[..., 0..order-1]`` with ``x[n] ~ sum_k a[k-1] x[n-k]``; zero where ``r[0]`` is 0.
    """
    a = np.zeros(r.shape[:-1] + (order,))
    err = r[..., 0].copy()
    for k in range(order):
        acc = r[..., k + 1] - np.sum(a[..., :k] * r[..., k:0:-1], axis=-1)
        refl = _safe_div(acc, err)
        a[..., :k] = a[..., :k] - refl[..., None] * a[..., :k][..., ::-1]
        a[..., k] = refl
        err = err * (1 - refl * refl)
    return a


FEATURES: dict[str, Callable[[_Context], np.ndarray]] = {
    "MAV": lambda c: np.mean(np.abs(c.w), axis=-1),
    "RMS": lambda c: np.sqrt(np.mean(c.w * c.w, axis=-1)),
    "WL": lambda c: np.sum(c.abs_d, axis=-1),
    "ZC": _zc,
    "SSC": _ssc,
    "VAR": lambda c: np.var(c.w, axis=-1),
    "IAV": lambda c: np.sum(np.abs(c.w), axis=-1),
    "WAMP": lambda c: np.sum(c.abs_d > c.wamp, axis=-1).astype(np.float64),
    "LD": lambda c: np.exp(np.mean(np.log(np.abs(c.w) + 1), axis=-1)),
    "AR": _ar,
    "ACT": lambda c: np.var(c.w, axis=-1),
    "MOB": _mob,
    "COMP": _comp,
    "LS": _ls,
    "MFL": lambda c: np.log10(np.maximum(np.sum(c.abs_d, axis=-1), np.finfo(np.float64).tiny)),
    "MSR": _msr,
}


class Features(WindowedNode):
    """Time-domain features per sliding window (one output row per window, channel-major columns).

    ``features`` lists names and groups: HTD (MAV, ZC, SSC, WL), TDAR (HTD + AR), LS4 (LS, MFL,
    MSR, WAMP), HJORTH (ACT, MOB, COMP), or single names MAV RMS WL ZC SSC VAR IAV WAMP LD AR
    ACT MOB COMP LS MFL MSR. Thresholds left unset take the ``device`` defaults.
    """

    kind = "features"
    features = Param((list, str), ["HTD"], help="feature and group names (HTD, TDAR, LS4, HJORTH, MAV, ...)")
    device = Param(str, "myo", choices=tuple(DEVICE_THRESHOLDS),
                   help="default thresholds for this signal scale: myo int8 counts, normalized, ninapro_db1")
    zc_threshold = Param(float, None, nullable=True, ge=0, help="minimum |step| of a zero crossing (signal units)")
    ssc_threshold = Param(float, None, nullable=True, ge=0,
                          help="minimum product of the two slopes of a slope sign change (signal units squared)")
    wamp_threshold = Param(float, None, nullable=True, ge=0, help="Willison amplitude step threshold (signal units)")
    ar_order = Param(int, 4, ge=1, le=32, help="number of AR coefficients (when AR or TDAR is asked for)")

    def check(self) -> None:
        try:
            self._names = expand(self.features)
        except ValueError as exc:
            raise ParamError("features", str(exc)) from None
        if self.window < 3:
            raise ParamError("window", "features need windows of at least 3 samples")
        if "AR" in self._names and self.ar_order >= self.window:
            raise ParamError("ar_order", f"ar_order={self.ar_order} needs a window longer than that "
                                         f"(window={self.window})")
        defaults = DEVICE_THRESHOLDS[self.device]
        self._kwargs = {
            "zc_threshold": defaults["zc"] if self.zc_threshold is None else self.zc_threshold,
            "ssc_threshold": defaults["ssc"] if self.ssc_threshold is None else self.ssc_threshold,
            "wamp_threshold": defaults["wamp"] if self.wamp_threshold is None else self.wamp_threshold,
            "ar_order": self.ar_order,
        }

    def out_width(self, channels: int | None) -> int | None:
        return None if channels is None else len(feature_names(self._names, channels, self.ar_order))

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        out = super().describe(inputs)["out"]
        names = None
        if info.channels is not None:
            channels = list(info.names) if info.names else info.channels
            names = tuple(feature_names(self._names, channels, self.ar_order))
        return {"out": StreamInfo(rate=out.rate, channels=out.channels, names=names)}

    def setup(self) -> None:
        super().setup()
        self._announced = False

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return extract(windows, self._names, **self._kwargs)

    def process(self, msg: Msg) -> Msg | None:
        out = super().process(msg)
        if out is not None and not self._announced:
            out.meta["features"] = feature_names(self._names, self.windowed.guard.width, self.ar_order)
            self._announced = True
        return out
