"""`emgflow calibrate`: a guided session recorded into one take, a model trained on it, and the command
that serves that model.

The session is a graph (``graphs/calibrate-myo.yaml``, ``calibrate-lsl.yaml``): the acquisition node
of the device, a ``cue`` node that shows the cues and labels each sample by its index, and a
``record`` recorder. This command sets the session on those two nodes, runs the graph until the cue
says it is done, then trains exactly as ``emgflow train --data TAKE`` does (same code, same flags'
defaults), and prints the ``emgflow run`` line of the gesture graph with the new model once that graph
validates with it and feeds its ``classify`` node through the very chain the model was trained behind.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import EmgflowError, GraphErrors
from ..graph import Graph, load_graph
from ..node import Node
from ..supervisor import NodeProc, Supervisor
from .common import console, err_console, load_or_exit

TAKE, MODEL = "take.emgrec", "model.pt"


def calibrate(
    graph: Annotated[Path, typer.Argument(help="Calibration graph: a source, a `cue` node and a `record` recorder "
                                               "(graphs/calibrate-myo.yaml, graphs/calibrate-lsl.yaml).")],
    gestures: Annotated[str, typer.Option(help="Gestures to cue, comma-separated, classes 1.. in this order "
                                               "(class 0 is rest); one named as a grip (power, open, pinch, point, "
                                               "tripod, hook, key) moves the simulated hand to it.")
                        ] = "power,open,pinch",
    reps: Annotated[int, typer.Option(min=2, help="Repetitions of each gesture (the last is held out for the "
                                                  "test score, the one before picks the epoch count).")] = 5,
    hold: Annotated[float, typer.Option(help="Seconds each gesture is held.")] = 3.0,
    rest: Annotated[float, typer.Option(help="Seconds of rest (the countdown) before each gesture.")] = 2.0,
    out: Annotated[Path, typer.Option("--out", "-o", help=f"Folder for the take ({TAKE}) and the model "
                                                          f"({MODEL}); an existing take is never overwritten.")
                   ] = Path("runs/calibrate"),
    set_: Annotated[list[str], typer.Option("--set", help="Override a param of the calibration graph, e.g. "
                                                          "myo.tty=/dev/ttyACM0; passed on to the gesture graph "
                                                          "where it has that node.")] = [],
    model: Annotated[str, typer.Option(help="Model to train (as `emgflow train --model`).")] = "lstm_cnn",
    epochs: Annotated[Optional[int], typer.Option(help="Override the recipe's epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the training.")] = 0,
    highpass: Annotated[float, typer.Option(help="High-pass (Hz) first in the model's pipeline: the gesture "
                                                 "graph serves the model behind the same filter.")] = 20.0,
    serve: Annotated[Optional[Path], typer.Option(help="Gesture graph to run the model in (a `classify` and a "
                                                       "`hand` node); default: calibrate-X.yaml's X-gestures.yaml "
                                                       "beside it.")] = None,
) -> None:
    """Walk a person through gestures x repetitions, record one take, train on it, print how to run the model."""
    from ..ml.config import TrainConfig
    from ..ml.models import CLASSIFIERS
    from .train import train_and_save

    if model not in CLASSIFIERS:  # before the session, not after it
        raise typer.BadParameter(f"{model!r} is not a classifier; one of {', '.join(CLASSIFIERS)}",
                                 param_hint="--model")
    names = [g.strip() for g in gestures.split(",") if g.strip()]
    take, ckpt_path = (out / TAKE).resolve(), (out / MODEL).resolve()
    if take.exists():
        raise typer.BadParameter(f"{take} exists: a take is never overwritten; name another --out folder",
                                 param_hint="--out")
    serve = serve or graph.with_name(graph.name.removeprefix("calibrate-").replace(".", "-gestures.", 1))
    if not serve.is_file():
        raise typer.BadParameter(f"{serve} not found: name the graph that will serve the model", param_hint="--serve")
    session = [f"cue.gestures={json.dumps(names)}", f"cue.reps={reps}", f"cue.hold_s={hold}", f"cue.rest_s={rest}",
               f"record.path={_scalar(str(take))}"]
    g = load_or_exit(graph, [*set_, *session])
    if not _record_session(g):
        err_console.print(f"stopped before the session ended; {take} keeps what was recorded (`emgflow train "
                          f"--data {take} --highpass {highpass:g}` trains on it if it holds two repetitions)")
        raise typer.Exit(code=1)
    try:
        run = TrainConfig.from_options({"model": model, "dataset": str(take), "seed": seed, "epochs": epochs,
                                        "highpass": highpass})
    except (ValueError, EmgflowError) as exc:
        err_console.print(f"[bold red]error[/] {exc}")
        raise typer.Exit(code=2) from None
    ckpt = train_and_save(run, ckpt_path)
    command = serve_command(serve, ckpt_path, ckpt, set_)
    console.print("run the gesture graph with the new model:")
    console.print(shlex.join(command), highlight=False, markup=False, soft_wrap=True)


def _scalar(text: str) -> str:
    """``text`` as a ``--set`` value that YAML reads back as that string: bare where it can be."""
    import yaml

    return text if yaml.safe_load(text) == text else json.dumps(text)


def _record_session(g: Graph) -> bool:
    """Run the calibration graph until its cue says the session is done (True) or it stops first."""
    finished = []

    def on_stats(procs: dict[str, NodeProc]) -> None:
        if not finished and (procs["cue"].stats.get("counters") or {}).get("finished"):
            finished.append(True)
            sup.request_stop()

    def on_event(node: str, text: str) -> None:
        err_console.print(f"[bold yellow]{node}[/]: {text}", highlight=False)

    sup = Supervisor(g, on_event=on_event, on_stats=on_stats)
    code = sup.run()
    return bool(finished) and code == 0


def serve_command(graph: Path, model: Path, ckpt: dict[str, Any], overrides: list[str]) -> list[str]:
    """``emgflow run GRAPH`` with the model on its ``classify`` node, each class's grip on its ``hand``
    node and the calibration's own overrides for the nodes it shares; refused (exit 2) if the graph
    does not validate with them or feeds ``classify`` through another chain than the model's pipeline."""
    from ..hand.models import GRIPS, HOLD

    grips = {i: name if name in GRIPS else HOLD for i, name in enumerate(ckpt["outputs"])}
    own = [f"classify.model={_scalar(str(model))}",
           "hand.gestures={" + ", ".join(f"{i}: {json.dumps(grip)}" for i, grip in grips.items()) + "}"]
    try:
        shared = set(load_graph(graph).nodes)
        sets = [*own, *(o for o in overrides if o.partition(".")[0] in shared)]
        served = load_graph(graph, sets)
    except GraphErrors as exc:
        for e in exc.errors:
            err_console.print(f"[bold red]error[/] {e}", highlight=False)
        err_console.print(f"the model is saved ({model}) but {graph} cannot serve it as above")
        raise typer.Exit(code=2) from None
    from ..ml.datasets import build_nodes

    trained = [_settings(node) for node in build_nodes(ckpt["pipeline"])]
    if served_chain(served) != trained:
        err_console.print(f"the model is saved ({model}) but {graph} feeds classify through "
                          f"{served_chain(served)}, not the chain it was trained behind, {trained}")
        raise typer.Exit(code=2)
    return ["emgflow", "run", str(graph), *(arg for s in sets for arg in ("--set", s))]


def served_chain(g: Graph, node: str = "classify") -> list[tuple[str, dict[str, Any]]]:
    """The nodes between the source and ``node``, in stream order, each as its kind and every param."""
    chain = []
    spec = g.nodes[node]
    while spec.inputs:
        spec = g.nodes[next(iter(spec.inputs.values())).source]
        if spec.inputs:
            chain.insert(0, _settings(spec.cls(**spec.params)))
    return chain


def _settings(node: Node) -> tuple[str, dict[str, Any]]:
    return node.kind, {name: getattr(node, name) for name in node.params}
