"""CURVE keys and the gate that checks them: what makes a ``transport: tcp`` run authenticated and
encrypted.

Every tcp socket of a run speaks CURVE. The binding sockets (an output's XPUB, the supervisor's control
ROUTER) are servers; the connecting ones (an input's SUB, a process's control and heartbeat DEALERs) are
clients. On one host the supervisor makes a fresh key pair per run and every socket uses it; the secret
stays in a 0600 file in the 0700 run folder (never on a command line: ``ps`` shows argv). Each process
that binds runs a ``Gate``: a ZAP handler that admits only the listed public keys (the run's own, plus
the graph's ``keys:`` folder) and counts every other peer, which never reaches a node.
Across hosts (a graph with ``hosts:``) each host uses its own pair instead: a client names the
public key of the host it connects to, and the gates admit every host's key (hosts.py, remote.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import zmq
import zmq.auth

RUN_KEY = "run"   # the run's key pair: RUNDIR/run.key (public) and RUNDIR/run.key_secret (0600)


def create(name: str, folder: str | Path) -> tuple[Path, Path]:
    """A host's key pair, ``NAME.key`` (public: give it to the peers) and ``NAME.key_secret`` (0600)."""
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"a key name is a plain file name, got {name!r}")
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    public, secret = (folder / f"{name}.key", folder / f"{name}.key_secret")
    for path in (public, secret):
        if path.exists():
            raise FileExistsError(f"{path} exists: a key pair is never overwritten (remove it first)")
    old = os.umask(0o077)  # the secret is never readable by others, not even for a moment
    try:
        zmq.auth.create_certificates(str(folder), name)
    finally:
        os.umask(old)
    public.chmod(0o644)
    secret.chmod(0o600)
    return public, secret


def public_keys(folder: str | Path) -> list[str]:
    """The z85 public keys of the ``*.key`` files in ``folder``; ValueError saying why if there are none
    or one is not a key (a typo must not silently admit nobody, or somebody)."""
    try:
        keys = sorted(k.decode(errors="replace") for k in zmq.auth.load_certificates(str(folder)))
    except OSError as exc:
        raise ValueError(str(exc)) from None
    bad = [k for k in keys if len(k) != 40]
    if bad or not keys:
        raise ValueError(f"{folder} holds no public key (NAME.key)" if not keys else f"not a z85 public key: {bad[0]!r}")
    return keys


@dataclass(frozen=True)
class Curve:
    """How one process's tcp sockets speak CURVE: the servers' public key, the file holding this side's
    key pair, and the client public keys its servers admit."""

    server_key: str
    key_file: str
    allowed: list[str]
    graph: list[str] = field(default_factory=list)  # the run's own hosts' keys: its processes, not admitted peers

    @classmethod
    def for_run(cls, rundir: str, extra: str = "") -> "Curve":
        """A fresh key pair in the run folder; ``extra``: a folder of further public keys to admit."""
        public, _ = create(RUN_KEY, rundir)
        own = zmq.auth.load_certificate(str(public))[0].decode()
        return cls(server_key=own, key_file=str(Path(rundir) / f"{RUN_KEY}.key_secret"),
                   allowed=sorted({own, *(public_keys(extra) if extra else [])}), graph=[own])

    def member(self, key: str) -> bool:
        """``key`` belongs to one of the run's own processes (not to a peer ``keys:`` admits)."""
        return key in self.graph

    @cached_property
    def _pair(self) -> tuple[bytes, bytes]:
        public, secret = zmq.auth.load_certificate(self.key_file)
        if secret is None:
            raise ValueError(f"{self.key_file} holds no secret key")
        return public, secret

    def server(self, sock: zmq.Socket) -> None:
        """Make a binding socket a CURVE server (before it binds)."""
        sock.curve_publickey, sock.curve_secretkey = self._pair
        sock.curve_server = True

    def client(self, sock: zmq.Socket) -> None:
        """Make a connecting socket a CURVE client of the run's servers (before it connects)."""
        sock.curve_publickey, sock.curve_secretkey = self._pair
        sock.curve_serverkey = self.server_key.encode()


class Gate:
    """A process's ZAP handler: admits the listed public keys and counts the refused peers. Start it
    before the first server socket binds; stop it before the context terminates."""

    def __init__(self, ctx: zmq.Context, allowed: list[str]) -> None:
        from zmq.auth.thread import ThreadAuthenticator  # imports asyncio (~0.1 s): only tcp runs pay it

        self.allowed = {k.encode() for k in allowed}
        self.refused = 0
        self.auth = ThreadAuthenticator(ctx)
        self.auth.start()
        self.auth.configure_curve_callback("*", credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the authenticator (its thread) for every CURVE handshake."""
        if key in self.allowed:
            return True
        self.refused += 1
        return False

    def stop(self) -> None:
        self.auth.stop()
