"""One training run's configuration: what ``train_model`` takes, ``emgflow train``'s flags and the
keys of its ``--config`` YAML file, all from the one ``TrainConfig`` dataclass.

Each field's ``help`` is its flag's help text; ``flag`` (where present) its flag names. This module
imports no torch: the CLI builds its flags from these fields at startup, before any run needs it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence


def _opt(text: str, default: Any = None, **cli: Any) -> Any:
    """A field with its flag's help text and any further ``typer.Option`` settings."""
    return field(default=default, metadata={"help": text, **cli})


ADAPT_MODES = ("norm", "finetune", "both", "full")
"""How a run started from ``--init`` adapts the checkpoint (``adapt``)."""
DEFAULT_ADAPT = "finetune"
"""Measured best with one cycle of a new session: on myo-readings (12 session pairs x 2 seeds) model A
fine-tuned scored 0.808 per window, +0.010 ± 0.004 over ``both`` and +0.030 over ``norm``
(bench/results/cross_session.md)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one run depends on. ``None``: the recipe's or the architecture's choice."""

    model: str = field(metadata={"help": "lstm_cnn, cnn (classifiers); convlstm, lstm (regressors)."})
    dataset: str = field(metadata={
        "help": "db1, db5, coteallard, myo-readings, libemg, grip; or --data FILE: a dataset file (.yaml) describing "
                "your own takes, or one take (.npz, .emgrec) with its label stream.", "flag": ("--dataset", "--data")})
    subject: Any = _opt("Subject id (e.g. 1, Male0, v8; any the dataset's files hold); the test subject in cross "
                        "mode. Optional where the dataset holds one subject.")
    recipe: str | None = _opt("paper or improved (classifiers); paper_b or fast_b (regressors).")
    mode: str = _opt("subject: train and test on one subject; cross: train on the others.", "subject")
    train_subjects: Sequence[Any] | None = _opt(
        "Cross mode: train on these subjects only (comma-separated), e.g. a pool that excludes every subject "
        "you will adapt to and test on.")
    wp: bool = _opt("lstm_cnn: stack the wavelet-packet image.", True, flag="--wp/--no-wp")
    wp_mode: str = _opt("WP image: tree15 or framewise.", "tree15")
    frames: int | None = _opt("Image height / exposure length in frames.")
    hidden: int | list[int] | None = _opt("LSTM hidden size, or ConvLSTM channels as 64,32.")
    layout: str | None = _opt(
        "convlstm: 'image' (the paper: 3x3 cells over electrodes x frames) or 'channels' (electrodes as "
        "channels of 1-D cells over frames; default outside the paper recipe).")
    readout: str | None = _opt(
        "convlstm: 'maps' (the paper: one map per joint, a shared Linear reads each) or 'dense' (one Linear "
        "over the last hidden state; default outside the paper recipe).")
    attention: str | None = _opt(
        "lstm_cnn: 'context' (the paper: the attention contexts feed the CNN) or 'attentional' (Luong's "
        "tanh(W_c [context; hidden state]) per step).")
    members: int = _opt("A seed ensemble of N models (seeds seed .. seed+N-1): regressors' outputs, classifiers' "
                        "class probabilities averaged.", 1)
    init: Path | None = _opt(
        "Start from this checkpoint (same model, pipeline and outputs), e.g. yesterday's model, and adapt it to "
        "this run's training repetitions (one calibration cycle will do) as --adapt says.", exists=True,
        dir_okay=False)
    adapt: str | None = _opt(
        f"With --init: norm (re-estimate the input normalisation only), finetune (a few epochs at a lower lr, "
        f"every layer), both (norm, then finetune), or full (the whole recipe from its weights: a model of other "
        f"people, a full recording of this one). Default: {DEFAULT_ADAPT}.")
    train_step: int = _opt("Hop between training images (samples).", 5)
    highpass: float | None = _opt("Raw EMG: a causal 4th-order high-pass (Hz) first in the pipeline.")
    refit: bool | None = _opt("After validation picks the epoch count, retrain on all training reps.",
                              flag="--refit/--no-refit")
    all_rest: bool | None = _opt(
        "Classifiers: train on every rest segment (test keeps the dataset's rest subsampling).",
        flag="--all-rest/--subsampled-rest")
    epochs: int | None = _opt("Override the recipe's epochs.")
    lr: float | None = _opt("Override the recipe's learning rate.")
    batch: int | None = _opt("Override the recipe's batch size.")
    seed: int = _opt("Random seed: same seed, same model.", 0)
    threads: int = _opt("torch CPU threads.", 1)
    device: str = _opt("auto (CUDA when present), cpu or cuda.", "auto")

    def __post_init__(self) -> None:
        """Refuse a run that cannot work before any data is loaded."""
        from .datasets import dataset
        from .models import ARCHITECTURES, CLASSIFIERS, REGRESSORS, architecture

        spec, arch = dataset(self.dataset), architecture(self.model)
        if self.subject not in spec.subjects:
            raise ValueError(f"{spec.name} has no subject {self.subject!r}; subjects: {', '.join(map(str, spec.subjects))}")
        if arch.task == "classify" and not spec.classes:
            raise ValueError(f"dataset {spec.name} has no class labels; use a regression model "
                             f"({', '.join(REGRESSORS)})")
        if arch.task == "regress" and not spec.target:
            raise ValueError(f"dataset {spec.name} has no regression target; use a classifier "
                             f"({', '.join(CLASSIFIERS)})")
        for name, other in ARCHITECTURES.items():
            for option in other.choices:
                value = getattr(self, option)
                if value is not None and option not in arch.choices:
                    raise ValueError(f"{option} applies to {name}, not {self.model}")
                if value is not None and name == self.model and value not in arch.choices[option]:
                    raise ValueError(f"{option} must be one of {', '.join(arch.choices[option])}, got {value!r}")
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        if self.mode not in ("subject", "cross"):
            raise ValueError(f"mode must be 'subject' or 'cross', got {self.mode!r}")
        if self.adapt is not None and (self.init is None or self.adapt not in ADAPT_MODES):
            raise ValueError(f"adapt applies with --init and must be one of {', '.join(ADAPT_MODES)}, "
                             f"got {self.adapt!r}{'' if self.init else ' without --init'}")
        if self.init is not None and self.members > 1 and (self.adapt or DEFAULT_ADAPT) != "full":
            raise ValueError("members > 1 applies to training from scratch or --adapt full; --adapt "
                             f"{self.adapt or DEFAULT_ADAPT} adapts the one model --init holds")
        pool = self.train_subjects
        if pool is not None and (self.mode != "cross" or self.subject in pool or not pool):
            raise ValueError(f"train_subjects applies to cross mode and must not include the test subject "
                             f"{self.subject!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TrainConfig:
        """A run from text-like options (command-line flags, YAML keys): subjects checked against the
        dataset, ``hidden`` as ``64,32`` and ``train_subjects`` as ``3,4`` read; unknown keys refused."""
        from .datasets import dataset, parse_subject

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; known: {', '.join(OPTIONS)}")
        opts = dict(options)
        spec = dataset(str(opts["dataset"]))
        if opts.get("subject") is None and len(spec.subjects) > 1:
            raise ValueError(f"{spec.name} holds several subjects; name one with --subject: "
                             f"{', '.join(map(str, spec.subjects))}")
        opts["subject"] = parse_subject(spec, str(opts.get("subject") or spec.subjects[0]))
        pool = opts.get("train_subjects")
        if isinstance(pool, (str, int)):
            pool = str(pool).split(",")
        if pool is not None:
            opts["train_subjects"] = [parse_subject(spec, str(s).strip()) for s in pool]
        if isinstance(opts.get("hidden"), str):
            text = opts["hidden"]
            opts["hidden"] = [int(h) for h in text.split(",")] if "," in text else int(text)
        if opts.get("init") is not None:
            opts["init"] = Path(opts["init"])
        return cls(**opts)

    def recipe_overrides(self) -> dict[str, Any]:
        """The recipe entries this run sets (``all_rest`` is the recipe's ``train_all_rest``)."""
        given = {"epochs": self.epochs, "lr": self.lr, "batch": self.batch, "refit": self.refit,
                 "train_all_rest": self.all_rest}
        return {k: v for k, v in given.items() if v is not None}

    def architecture_options(self) -> dict[str, Any]:
        """What the architecture's defaults read (``None`` = unset)."""
        return {"hidden": self.hidden, "layout": self.layout, "readout": self.readout, "attention": self.attention}


OPTIONS = tuple(f.name for f in fields(TrainConfig))
"""Every option by name: the flags of ``emgflow train`` and the keys of its ``--config`` file."""
REQUIRED = tuple(f.name for f in fields(TrainConfig) if f.default is MISSING)
