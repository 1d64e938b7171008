"""Two hosts on one machine for tests and benchmarks: network namespaces joined by a veth pair (root
only). Only 10.77.0.1/24 and 10.77.0.2/24 (and each namespace's loopback) are ever used; names are
unique per instance and ``down`` removes everything, even after a failure."""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

CLONE_NEWNET = 0x40000000
ADDRESSES = ("10.77.0.1", "10.77.0.2")
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class TwoHosts:
    """Namespaces ``a`` (10.77.0.1) and ``b`` (10.77.0.2), joined by one veth pair."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ns = {"a": f"emgflow-{tag}-a", "b": f"emgflow-{tag}-b"}
        self.veth = {"a": f"ef{tag}a", "b": f"ef{tag}b"}    # interface names hold at most 15 characters
        self.address = dict(zip("ab", ADDRESSES))
        self.procs: list[subprocess.Popen] = []

    def up(self) -> None:
        for name in self.ns.values():
            _ip("netns", "add", name)
        _ip("link", "add", self.veth["a"], "type", "veth", "peer", "name", self.veth["b"])
        for side in "ab":
            ns = self.ns[side]
            _ip("link", "set", self.veth[side], "netns", ns)
            _ip("-n", ns, "addr", "add", f"{self.address[side]}/24", "dev", self.veth[side])
            _ip("-n", ns, "link", "set", self.veth[side], "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()
        for name in self.ns.values():  # deleting a namespace deletes its end of the veth, and so the pair
            with contextlib.suppress(OSError):
                _ip("netns", "del", name)

    def link(self, up: bool) -> None:
        """Cut (or restore) the wire between the hosts."""
        _ip("-n", self.ns["a"], "link", "set", self.veth["a"], "up" if up else "down")

    def run(self, side: str, *argv: str, log: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        """``ip netns exec NS python -m emgflow.cli.app ARGV...`` in its own session (killed at teardown);
        its output goes to ``log`` (read it while it runs), else to pipes; ``env``: added variables."""
        return self.exec(side, sys.executable, "-m", "emgflow.cli.app", *argv, log=log, env=env)

    def exec(self, side: str, *argv: str, log: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Any command in host ``side``'s namespace, as ``run`` starts emgflow's."""
        out = open(log, "w") if log is not None else subprocess.PIPE
        try:
            proc = subprocess.Popen(["ip", "netns", "exec", self.ns[side], *argv],
                                    stdout=out, stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
                                    text=True, start_new_session=True, env={**os.environ, **(env or {})})
        finally:
            if log is not None:
                out.close()
        self.procs.append(proc)
        return proc

    @contextlib.contextmanager
    def inside(self, side: str) -> Iterator[None]:
        """Run this thread in host ``side``'s namespace: sockets (and threads) made here live there."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.ns[side]}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), "setns")
            yield
        finally:
            _libc.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(target)
