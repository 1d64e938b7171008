"""Exported models: one .onnx file that serves like its checkpoint, with no torch in the process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from emgflow.errors import ParamError  # noqa: E402
from emgflow.message import StreamInfo  # noqa: E402
from emgflow.ml.checkpoint import load  # noqa: E402
from emgflow.ml.served import ServedModel  # noqa: E402
from emgflow.nodes.classify import Classify  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "models"
SHIPPED = [("db5_s1_lstm_cnn", "classify"), ("db5_s1_le_convmn", "regress")]


def description(ckpt: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in ckpt.items() if k not in ("state_dict", "deployed")},
                                 default=lambda v: v.tolist()))


def outputs(served: ServedModel, rows: np.ndarray, task: str) -> np.ndarray:
    if task == "classify":
        return np.concatenate([served.run(rows[i:i + 1]) for i in range(len(rows))])
    state, out = None, []
    for i in range(len(rows)):  # the recurrent state carried row to row, as the regress node does
        y, state = served.run(rows[i:i + 1], state)
        out.append(y)
    return np.concatenate(out)


@pytest.mark.parametrize("name,task", SHIPPED)
def test_shipped_exports_are_current_and_serve_like_their_checkpoints(name, task):
    """models/*.onnx carry their checkpoint's description and give its outputs (same rows, same state)."""
    pt, onnx = MODELS / f"{name}.pt", MODELS / f"{name}.onnx"
    assert description(load(onnx)) == description(load(pt))
    assert load(onnx)["deployed"] == str(onnx)
    from_pt = ServedModel(str(pt), task, threads=1, warmup=0, engine="onnx")
    from_onnx = ServedModel(str(onnx), task, threads=1, warmup=0, engine="onnx")
    rows = np.random.default_rng(0).standard_normal((12, *from_pt.shape)).astype(np.float32)
    np.testing.assert_allclose(outputs(from_onnx, rows, task), outputs(from_pt, rows, task), rtol=1e-5, atol=1e-6)


def test_export_cli_writes_a_file_that_loads(tmp_path):
    from typer.testing import CliRunner

    from emgflow.cli.app import app

    out = CliRunner().invoke(app, ["export", str(MODELS / "db5_s1_lstm_cnn.pt"), "--out", str(tmp_path / "m.onnx")])
    assert out.exit_code == 0, out.output
    assert description(load(tmp_path / "m.onnx")) == description(load(MODELS / "db5_s1_lstm_cnn.pt"))
    assert CliRunner().invoke(app, ["export", str(tmp_path / "missing.pt")]).exit_code == 2


def test_an_exported_model_is_served_by_onnx_runtime_only():
    node = Classify(name="c", model=str(MODELS / "db5_s1_lstm_cnn.onnx"), engine="torchscript")
    with pytest.raises(ParamError, match="exported ONNX model"):
        node.describe({"in": StreamInfo(rate=100.0 / 15, channels=16)})
    code = textwrap.dedent(f"""
        import sys
        from emgflow.nodes.classify import Classify
        node = Classify(name="c", model={str(MODELS / "db5_s1_lstm_cnn.onnx")!r})
        node.setup()
        print("torch" in sys.modules)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
