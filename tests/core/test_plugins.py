"""Node kinds come from entry points: a plugin package registers like the stock library does, a
broken one is reported (never skipped in silence), and a node process imports only its own node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "plugin"
HEAVY = ("scipy", "torch", "onnxruntime", "pywt", "matplotlib", "sklearn")


def emgflow(*args: str, pythonpath: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI as the `emgflow` command runs it: -P, so the working directory is not on its path."""
    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    env.pop("PYTHONSAFEPATH", None)
    return subprocess.run([sys.executable, "-P", "-m", "emgflow.cli.app", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plugin installed (a real pip install) into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(PLUGIN)], check=True, capture_output=True, timeout=300)
    return target


def test_an_installed_plugin_node_is_listed_documented_and_runs(site, tmp_path):
    listed = emgflow("nodes", pythonpath=site, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "gain" in listed.stdout and "rms" in listed.stdout
    doc = emgflow("nodes", "gain", pythonpath=site, cwd=tmp_path)
    assert doc.returncode == 0 and "emgflow_example_plugin.gain.Gain" in doc.stdout and "factor" in doc.stdout
    (tmp_path / "g.yaml").write_text(textwrap.dedent("""
        nodes:
          source: {type: pulse, params: {rate: 500, count: 30, channels: 2}}
          gain: {type: gain, inputs: {in: source.out}, params: {factor: 3.0}}
          rec: {type: npz, inputs: {in: gain.out}, params: {path: rec.npz}}
        """))
    run = emgflow("run", "g.yaml", "--quiet", pythonpath=site, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = np.load(tmp_path / "rec.npz")["emg"]
    np.testing.assert_array_equal(got[:, 0], 3.0 * np.arange(30))


def test_a_plugin_that_fails_to_import_is_reported(tmp_path):
    """An installed distribution whose node module raises: `nodes` and `validate` say so by name."""
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[emgflow.nodes]\nbroken = broken_plugin_mod:Broken\n")
    (site / "broken_plugin_mod.py").write_text("raise ImportError('needs libfoo, which is not installed')\n")
    listed = emgflow("nodes", pythonpath=site, cwd=tmp_path)
    assert listed.returncode == 1
    assert "'broken' failed to import" in listed.stderr and "needs libfoo" in listed.stderr
    assert "rms" in listed.stdout  # the others are still listed
    (tmp_path / "g.yaml").write_text("nodes:\n  b: {type: broken}\n")
    checked = emgflow("validate", "g.yaml", pythonpath=site, cwd=tmp_path)
    assert checked.returncode == 2
    assert "g.yaml:2:" in checked.stderr and "broken_plugin_mod:Broken" in checked.stderr and "needs libfoo" in checked.stderr


@pytest.mark.parametrize("kind", ["relay", "rms", "npz", "replay", "hand_udp", "vote", "classify", "regress", "emgrec"])
def test_a_node_process_imports_its_own_node_and_the_core_only(kind, tmp_path):
    """What a node process imports: the runner, the core and its node's module, no heavy library."""
    code = textwrap.dedent(f"""
        import json, sys
        import emgflow.runner
        from emgflow.hosted import load_class
        from emgflow.registry import registered
        path = registered()[{kind!r}].value
        load_class(path)
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("emgflow.nodes.")
                                or m.split(".")[0] in {HEAVY!r})))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m.split(".")[0] in HEAVY], loaded
    assert len([m for m in loaded if m.startswith("emgflow.nodes.")]) <= 2, loaded  # its module (+ a sibling it uses)


def test_node_processes_do_not_import_from_the_working_directory(tmp_path):
    """A folder named like the library in the working directory is not what the runner imports."""
    for pkg in ("emgflow", "emgflow/nodes"):
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("raise SystemExit('imported from the working directory')\n")
    (tmp_path / "g.yaml").write_text(textwrap.dedent("""
        nodes:
          source: {type: pulse, params: {rate: 500, count: 10}}
          rec: {type: npz, inputs: {in: source.out}, params: {path: rec.npz}}
        """))
    run = emgflow("run", "g.yaml", "--quiet", pythonpath=None, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(np.load(tmp_path / "rec.npz")["emg"]) == 10


def test_a_pipeline_stored_in_a_checkpoint_names_only_registered_kinds():
    from emgflow.ml.datasets import build_nodes
    from emgflow.registry import UnknownNodeType

    assert [type(n).kind for n in build_nodes([{"type": "rms", "window": 4, "step": 2}])] == ["rms"]
    with pytest.raises(UnknownNodeType, match="only registered kinds"):
        build_nodes([{"type": "os:system"}])
