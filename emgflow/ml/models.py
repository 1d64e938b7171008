"""The architecture table: each model kind by name, with its task, builder, defaults and input pipeline.

A new architecture is its network class (``networks``) plus one ``ARCHITECTURES`` entry; training,
the CLI and checkpoints read everything else from here. A checkpoint stores ``model_config(...)``,
plain types that ``build`` turns back into the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from .networks import (ATTENTIONS, LAYOUTS, READOUTS, Cnn, LeConvMN, LstmCnn, MeanOfClassifiers, MeanOfMembers,
                       StreamLstm)
from .spec import DatasetSpec
from .pipelines import Pipeline, envelope_images, exposures, with_highpass


@dataclass(frozen=True)
class Architecture:
    """One model kind. ``task``: ``classify`` (class logits per window) or ``regress`` (outputs per
    exposure, state carried from one to the next)."""

    task: str
    build: Callable[[dict[str, Any]], nn.Module]
    """The network a ``model_config`` dict describes."""
    defaults: Callable[[Mapping[str, Any], bool], dict[str, Any]]
    """(the run's architecture options, ``None`` = unset; paper recipe?) -> ``model_config`` options."""
    pipeline: Pipeline
    """The node chain from the recording to this model's input."""
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The named variants it offers (option -> accepted values); other architectures refuse them."""
    wavelets: bool = False
    """Whether it reads a wavelet-packet image stacked on the EMG image."""


def _lstm_cnn(c: dict[str, Any]) -> nn.Module:
    return LstmCnn(c["frames"], c["channels"], c["planes"], c["n_outputs"], c.get("hidden", 10),
                   c.get("dropout", 0.5), c.get("attention", "context"))


def _cnn(c: dict[str, Any]) -> nn.Module:
    return Cnn(c["frames"], c["channels"], c["planes"], c["n_outputs"], c.get("dropout", 0.5))


def _convlstm(c: dict[str, Any]) -> nn.Module:
    return LeConvMN(c["channels"], c["frames"], c["n_outputs"], list(c.get("hidden", [64, 32])), c.get("kernel", 3),
                    c.get("dropout", 0.0), c.get("layout", "image"), c.get("readout", "maps"))


def _lstm(c: dict[str, Any]) -> nn.Module:
    return StreamLstm(c["channels"], c["n_outputs"], c["step"], c.get("hidden", 128), c.get("layers", 2),
                      c.get("dropout", 0.0))


def _lstm_cnn_defaults(given: Mapping[str, Any], paper: bool) -> dict[str, Any]:
    return {"hidden": given.get("hidden") or (10 if paper else 32), "attention": given.get("attention") or "context"}


def _convlstm_defaults(given: Mapping[str, Any], paper: bool) -> dict[str, Any]:
    """The paper's [64, 32] image cells; the cheaper channels cells afford [128, 64]."""
    layout = given.get("layout") or ("image" if paper else "channels")
    hidden = given.get("hidden") or ([64, 32] if layout == "image" else [128, 64])
    return {"hidden": list(hidden) if isinstance(hidden, (list, tuple)) else [hidden], "layout": layout,
            "readout": given.get("readout") or ("maps" if paper else "dense")}


ARCHITECTURES: dict[str, Architecture] = {
    "lstm_cnn": Architecture("classify", _lstm_cnn, _lstm_cnn_defaults, envelope_images,
                             {"attention": ATTENTIONS}, wavelets=True),
    "cnn": Architecture("classify", _cnn, lambda given, paper: {}, envelope_images),
    "convlstm": Architecture("regress", _convlstm, _convlstm_defaults, exposures,
                             {"layout": LAYOUTS, "readout": READOUTS}),
    "lstm": Architecture("regress", _lstm, lambda given, paper: {"hidden": given.get("hidden") or 128}, exposures),
}
CLASSIFIERS = tuple(name for name, a in ARCHITECTURES.items() if a.task == "classify")
REGRESSORS = tuple(name for name, a in ARCHITECTURES.items() if a.task == "regress")


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def default_pipeline(spec: DatasetSpec, model: str, *, rate: float, paper: bool, wp: bool = True,
                     wp_mode: str = "tree15", frames: int | None = None, step: int | None = None,
                     highpass: float | None = None) -> list[dict[str, Any]]:
    """The node chain from ``spec``'s raw recording to ``model``'s input: its architecture's pipeline
    (the seed's with ``paper``; the wavelet-packet image with ``wp`` where the model reads one),
    behind a high-pass at ``highpass`` Hz when given (``pipelines`` says why each node is there)."""
    arch = architecture(model)
    chain = arch.pipeline(spec, rate=rate, paper=paper, wp_mode=wp_mode if wp and arch.wavelets else None,
                          frames=frames, step=step)
    return with_highpass(spec, chain, highpass)


def model_config(model: str, *, n_outputs: int, channels: int, frames: int, planes: int = 1,
                 **options: Any) -> dict[str, Any]:
    """The plain-types architecture description a checkpoint stores and ``build`` reads."""
    architecture(model)
    return {"model": model, "n_outputs": int(n_outputs), "channels": int(channels), "frames": int(frames),
            "planes": int(planes), **options}


def ensemble(model: str, members: list[nn.Module]) -> nn.Module:
    """A seed ensemble of ``model`` networks: regressors take and return a state, classifiers average
    their class probabilities."""
    return MeanOfMembers(members) if is_recurrent({"model": model}) else MeanOfClassifiers(members)


def build(config: dict[str, Any]) -> nn.Module:
    """Instantiate the architecture a ``model_config`` dict describes (weights initialised)."""
    members = int(config.get("members", 1))
    if members > 1:
        return ensemble(config["model"], [build({**config, "members": 1}) for _ in range(members)])
    net = architecture(config["model"]).build(config)
    _glorot(net)
    return net


def _glorot(net: nn.Module) -> None:
    """Xavier/Glorot-uniform weights and zero biases, as in the seed recipe (Keras defaults)."""
    for name, p in net.named_parameters():
        if p.dim() >= 2:
            nn.init.xavier_uniform_(p)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


def is_recurrent(config: dict[str, Any]) -> bool:
    """Whether the model carries state across inputs (model B and its LSTM baseline)."""
    return architecture(config["model"]).task == "regress"
