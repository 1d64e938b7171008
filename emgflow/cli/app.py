"""Root Typer app: `emgflow run | validate | nodes | graph | bench | ...`."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from .. import __version__
from . import agent, bench, graph, keys, myo, nodes, run, validate, view

app = typer.Typer(name="emgflow", no_args_is_help=True, add_completion=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Real-time surface-EMG control: YAML graphs of node processes over ZeroMQ.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"emgflow {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s")


app.command("run")(run.run)
app.command("validate")(validate.validate)
app.command("nodes")(nodes.nodes)
app.command("graph")(graph.graph)
app.add_typer(bench.app, name="bench")
app.command("myo-emulator")(myo.myo_emulator)
app.command("view")(view.view)
app.command("keys")(keys.keys)
app.command("agent")(agent.agent)
# --- further commands (registered by their modules' owners) ---
from . import calibrate as calibrate_cmd, eval as eval_cmd, export as export_cmd, train as train_cmd  # noqa: E402  (ML commands; torch loads inside them)
app.command("train")(train_cmd.train)
app.command("calibrate")(calibrate_cmd.calibrate)
app.command("eval")(eval_cmd.eval_)
app.command("export")(export_cmd.export)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
