"""A sweep: many training jobs, run one after another in this process or side by side on Ray; resumable.

A job is a record of plain values (``Job``), so the same ``attempt`` runs it here or as a Ray task
on any machine of a cluster with nothing else sent over but, for a job that starts from another
job's model, that checkpoint's bytes. Workers write nothing: they return the result and the
checkpoint, and the driver writes both atomically to the results folder as each job finishes
(``<out>/jobs/<name>.json``, ``<out>/ckpt/<name>.pt``). An interrupted sweep therefore loses only
the jobs in flight, a rerun skips every job whose result is a success, and the workers need no
file system shared with the driver (only the package and the recordings).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from emgflow.errors import EmgflowError

from .config import OPTIONS

KINDS = ("model", "pretrain", "baselines", "reg_baselines")
"""``model``: train one model on one subject and score it; ``pretrain``: a cross-subject model of
``train_subjects`` (validation-selected, no refit) for other jobs to start from; ``baselines`` /
``reg_baselines``: the classical classifiers / regressors on the subject's model pipeline."""
CORE = ("name", "kind", "dataset", "subject", "model", "seed", "init")
_SET_BY_JOB = {"model", "dataset", "subject", "seed", "init", "threads", "device", "mode"}
TRAIN_OPTIONS = tuple(k for k in OPTIONS if k not in _SET_BY_JOB)
"""The ``TrainConfig`` options a model job's ``config`` may set; the job sets the others."""
BASELINE_OPTIONS = ("highpass",)
DROP = ("predictions", "rows", "trace", "confusion", "vote_confusion")
"""Per-window arrays left out of a result file (the checkpoint keeps what it keeps)."""

Result = dict[str, Any]
"""A job's record plus ``metrics`` and ``seconds`` (and ``epochs_run`` / ``best_epoch`` for a
model), or plus ``error``: the traceback of its failure. This is what ``<out>/jobs/<name>.json`` holds."""


class SweepError(EmgflowError):
    """A job list that cannot run (unknown kind or option, a start point outside the sweep) or a
    results folder holding a file that is not a result."""

    exit_code = 2


@dataclass(frozen=True)
class Job:
    """One job, fully described by plain values: JSON and Ray carry it as it is.

    ``init``: the name of the job whose model this one starts from (it runs first); ``config``:
    further ``TrainConfig`` options for a model job (recipe, wp, highpass, epochs, ...), only
    ``highpass`` for baselines. ``name`` names the job's files, so it is unique within a sweep."""

    name: str
    kind: str
    dataset: str
    subject: Any
    model: str | None = None
    seed: int = 0
    init: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SweepError(f"job {self.name}: unknown kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        trains = self.kind in ("model", "pretrain")
        if trains != (self.model is not None):
            raise SweepError(f"job {self.name}: a {self.kind} job " + ("names" if trains else "takes no") + " model")
        allowed = TRAIN_OPTIONS if trains else BASELINE_OPTIONS
        unknown = sorted(set(self.config) - set(allowed))
        if unknown:
            raise SweepError(f"job {self.name}: unknown option(s) {unknown} for a {self.kind} job; "
                             f"options: {', '.join(allowed)}")
        if self.init is not None and self.kind != "model":
            raise SweepError(f"job {self.name}: only a model job starts from another job's model")

    def as_dict(self) -> dict[str, Any]:
        """The flat record a result file begins with: the fields set, then the options."""
        core = {k: getattr(self, k) for k in CORE if getattr(self, k) is not None}
        return {**core, **self.config}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Job:
        """The job of a flat record (``as_dict``): keys other than the fields are its options."""
        return cls(**{k: record[k] for k in CORE if k in record},
                   config={k: v for k, v in record.items() if k not in CORE})


def run_job(job: Job, cpus: int, init: Path | None = None) -> tuple[Result, dict[str, Any] | None]:
    """Run ``job`` on ``cpus`` torch threads; ``init``: the checkpoint file of ``job.init``.
    Returns its result and, for a model job, its checkpoint dict."""
    import torch

    from .baselines import run_baselines, run_regression_baselines
    from .config import TrainConfig
    from .datasets import dataset, load_subject
    from .models import default_pipeline
    from .train import train_model

    torch.set_num_threads(cpus)
    t0 = time.perf_counter()
    result: Result = job.as_dict()
    ckpt = None
    if job.kind in ("baselines", "reg_baselines"):
        spec = dataset(job.dataset)
        subj = load_subject(spec, job.subject)
        if job.kind == "baselines":
            pipe = default_pipeline(spec, "cnn", rate=subj.rate, paper=False, highpass=job.config.get("highpass"))
            scores = run_baselines(subj, pipe)
        else:
            scores = run_regression_baselines(subj, default_pipeline(spec, "convlstm", rate=subj.rate, paper=False))
        result["metrics"] = {k: {m: v for m, v in met.items() if m not in DROP} for k, met in scores.items()}
    else:
        cross = {"mode": "cross", "refit": False} if job.kind == "pretrain" else {}
        start = {"adapt": "full"} if init is not None else {}  # the whole recipe from the start model, unless set
        ckpt = train_model(TrainConfig(job.model, job.dataset, job.subject, seed=job.seed, init=init, threads=cpus,
                                       device="cpu", **{**start, **job.config, **cross}))
        if init is not None:  # the start model as the results folder keeps it, not this run's copy of it
            ckpt["data"]["init"]["path"] = str(Path("ckpt") / f"{job.init}.pt")
        result["metrics"] = {k: v for k, v in ckpt["metrics"].items() if k not in DROP}
        result["epochs_run"] = len(ckpt["history"])
        result["best_epoch"] = max((h["epoch"] for h in ckpt["history"] if h.get("best") and not h.get("refit")),
                                   default=None)
    result["seconds"] = time.perf_counter() - t0
    return result, ckpt


def attempt(job: Job, cpus: int, init: bytes | None = None) -> tuple[Result, bytes | None]:
    """``run_job`` with files in and out as bytes, so it runs the same here or on a Ray worker: a
    failure comes back as a result with its traceback as text (nothing for the driver to unpickle)."""
    from . import checkpoint

    try:
        with tempfile.TemporaryDirectory(prefix="emgflow-job-") as tmp:
            start = Path(tmp) / "init.pt" if init is not None else None
            if start is not None:
                start.write_bytes(init)
            result, ckpt = run_job(job, cpus, start)
            if ckpt is None:
                return result, None
            return result, checkpoint.save(ckpt, Path(tmp) / "model.pt").read_bytes()
    except Exception:  # one failed job must not stop the others; its traceback is kept
        return failure(job, traceback.format_exc()), None


def failure(job: Job, error: str) -> Result:
    """The result of a job that failed: its record and why."""
    return {**job.as_dict(), "error": error}


class Executor(ABC):
    """Where jobs run, used as a context manager: ``submit`` hands one over, ``next_done`` waits
    for any one to finish."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @abstractmethod
    def submit(self, job: Job, init: bytes | None) -> None: ...

    @abstractmethod
    def next_done(self) -> tuple[Result, bytes | None]: ...


class LocalExecutor(Executor):
    """One job after another, in this process."""

    def __init__(self, cpus: int = 1) -> None:
        self.cpus = cpus
        self._queue: deque[tuple[Job, bytes | None]] = deque()

    def submit(self, job: Job, init: bytes | None) -> None:
        self._queue.append((job, init))

    def next_done(self) -> tuple[Result, bytes | None]:
        job, init = self._queue.popleft()
        return attempt(job, self.cpus, init)


class RayExecutor(Executor):
    """Jobs as Ray tasks of ``cpus`` CPUs each, as many at once as the cluster has CPUs for.

    ``address``: an existing cluster (``ray start --head`` prints it; its machines need emgflow with
    the ``ml`` extra and the recordings at ``EMGFLOW_DATA``); none: a new local Ray of
    ``local_cpus`` CPUs (default: all), shut down when the ``with`` block ends."""

    def __init__(self, cpus: int = 1, address: str | None = None, local_cpus: int | None = None) -> None:
        if address and local_cpus:
            raise SweepError("local_cpus sizes a new local Ray; an existing cluster at --address has its own")
        self.cpus, self.address, self.local_cpus = cpus, address, local_cpus
        self._pending: dict[Any, Job] = {}  # Ray's reference to a task's result -> its job
        self._task: Any = None  # ``attempt`` as a Ray remote function, once Ray runs

    def __enter__(self) -> RayExecutor:
        try:
            import ray
        except ImportError:
            raise SweepError("running jobs on Ray needs Ray: pip install 'emgflow-rt[ray]'") from None
        if self.address:
            ray.init(address=self.address)
        else:  # "local": always a new instance, never a cluster that happens to run on this machine
            ray.init(address="local", num_cpus=self.local_cpus, include_dashboard=False)
        self._task = ray.remote(num_cpus=self.cpus)(attempt)
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        ray.shutdown()

    def submit(self, job: Job, init: bytes | None) -> None:
        self._pending[self._task.remote(job, self.cpus, init)] = job

    def next_done(self) -> tuple[Result, bytes | None]:
        import ray

        [ref], _ = ray.wait(list(self._pending), num_returns=1)
        job = self._pending.pop(ref)
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker or its machine died: no traceback of ours
            return failure(job, f"{type(exc).__name__}: {exc}"), None


def result_path(out: Path, name: str) -> Path:
    return out / "jobs" / f"{name}.json"


def checkpoint_path(out: Path, name: str) -> Path:
    return out / "ckpt" / f"{name}.pt"


def read_result(path: Path) -> Result:
    """One result file, or a clear error naming it (results are written whole, so this means a foreign file)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path}: not a readable job result ({exc}); remove it to run the job again") from None
    if not isinstance(result, dict) or "name" not in result or not ("metrics" in result or "error" in result):
        raise SweepError(f"{path}: not a job result (no name, metrics or error); remove it to run the job again")
    return result


def results(out: Path) -> list[Result]:
    """Every result in ``out``, in name order."""
    return [read_result(p) for p in sorted((out / "jobs").glob("*.json"))]


def finished(out: Path) -> set[str]:
    """Names of the jobs whose result in ``out`` is a success (a failed job runs again on a rerun)."""
    return {r["name"] for r in results(out) if "error" not in r}


def pending(jobs: Iterable[Job], out: Path) -> list[Job]:
    """The jobs still to run: those without a successful result in ``out``."""
    done = finished(out)
    return [j for j in jobs if j.name not in done]


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a reader (or a rerun after a kill) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_result(out: Path, result: Result, ckpt: bytes | None) -> None:
    """The checkpoint first: a result file on disk means its job is complete."""
    if ckpt is not None:
        _write(checkpoint_path(out, result["name"]), ckpt)
    _write(result_path(out, result["name"]), json.dumps(result, indent=1).encode())


def check_jobs(jobs: Iterable[Job], out: Path, done: set[str]) -> None:
    """Refuse duplicate names and a job starting from one that neither runs first nor has finished
    (with its checkpoint) in ``out``."""
    names: set[str] = set()
    for job in jobs:
        if job.name in names:
            raise SweepError(f"two jobs are named {job.name}")
        if job.init in done and not checkpoint_path(out, job.init).is_file():
            raise SweepError(f"job {job.name} starts from job {job.init}, whose checkpoint "
                             f"{checkpoint_path(out, job.init)} is missing; remove {result_path(out, job.init)} "
                             f"to train it again")
        if job.init is not None and job.init not in names and job.init not in done:
            raise SweepError(f"job {job.name} starts from job {job.init}, which has not finished and does not "
                             f"run before it in this sweep")
        names.add(job.name)


def run_sweep(jobs: list[Job], out: Path, executor: Executor,
              on_done: Callable[[Result], None] | None = None) -> list[Result]:
    """Run those of ``jobs`` not finished in ``out`` (a job after the one it starts from) on
    ``executor``; save each result as it arrives and pass it to ``on_done``. A job whose start
    point failed fails without running. Returns the results in the order they finished."""
    done = finished(out)
    check_jobs(jobs, out, done)
    waiting, failed, flying, out_results = pending(jobs, out), set(), 0, []

    def record(result: Result, ckpt: bytes | None) -> None:
        save_result(out, result, ckpt)
        (failed if "error" in result else done).add(result["name"])
        out_results.append(result)
        if on_done is not None:
            on_done(result)

    while waiting or flying:
        for job in [j for j in waiting if j.init is None or j.init in done or j.init in failed]:
            waiting.remove(job)
            if job.init in failed:
                record(failure(job, f"it starts from job {job.init}, which failed"), None)
            else:
                executor.submit(job, checkpoint_path(out, job.init).read_bytes() if job.init else None)
                flying += 1
        if flying:
            record(*executor.next_done())
            flying -= 1
    return out_results
