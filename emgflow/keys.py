"""CURVE keys, the ipc run's password and the gate that checks them: what makes a ``transport: tcp``
run authenticated and encrypted, and an ipc run's data edges closed to other processes of the user.

Every tcp socket of a run speaks CURVE. The binding sockets (an output's XPUB, the supervisor's control
ROUTER) are servers; the connecting ones (an input's SUB, a process's control and heartbeat DEALERs) are
clients. On one host the supervisor makes a fresh key pair per run and every socket uses it; the secret
stays in a 0600 file in the 0700 run folder (never on a command line: ``ps`` shows argv). Each process
that binds runs a ``Gate``: a ZAP handler that admits only the listed public keys (the run's own, plus
the graph's ``keys:`` folder) and counts every other peer, which never reaches a node.
Across hosts (a graph with ``hosts:``) each host uses its own pair instead: a client names the
public key of the host it connects to, and the gates admit every host's key (hosts.py, remote.py).

On ipc the 0700 run folder keeps other users out, but any process of the same user could subscribe to
a lossless output and never read, stalling it. So every output's XPUB is a PLAIN server and every
input's SUB a PLAIN client (username: its node, password: a per-run secret in a 0600 file of the run
folder); the gate admits only that password, so a stranger never gets a pipe to fill. PLAIN sends the
password unencrypted, which on a unix socket only the process at the other end sees: the run's own
output. Both cost only the handshake, nothing per message.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

RUN_KEY = "run"   # the run's key pair: RUNDIR/run.key (public) and RUNDIR/run.key_secret (0600)
RUN_PASSWORD = "run.password"  # ipc: RUNDIR/run.password (0600), the PLAIN password of the run's inputs
_ZAP = "inproc://zeromq.zap.01"  # where libzmq asks a context's ZAP handler (RFC 27)


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

    def admit(self, mechanism: bytes, credentials: list[bytes]) -> str | None:
        """The peer's user id if its CURVE public key is listed, else None."""
        if mechanism != b"CURVE" or len(credentials) != 1 or len(credentials[0]) != 32:
            return None
        key = z85.encode(credentials[0]).decode()
        return key if key in self.allowed else None


@dataclass(frozen=True)
class Plain:
    """How an ipc run's data sockets authenticate (PLAIN, checked by the ``Gate``): the file holding the
    run's password, and the username a client gives (its node: who a peer is, in libzmq's metadata)."""

    password_file: str
    user: str = ""

    @classmethod
    def for_run(cls, rundir: str) -> "Plain":
        """A fresh password in a new 0600 file of the run folder."""
        path = Path(rundir) / RUN_PASSWORD
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
        return cls(str(path))

    @classmethod
    def beside(cls, endpoint: str, user: str) -> "Plain | None":
        """A client of the run that binds ``endpoint`` (ipc: its password file lies beside the socket, in
        the run folder); None when there is none (tcp, or another user's run)."""
        path = Path(endpoint.removeprefix("ipc://")).parent / RUN_PASSWORD
        return cls(str(path), user) if endpoint.startswith("ipc://") and os.access(path, os.R_OK) else None

    @cached_property
    def _password(self) -> bytes:
        return Path(self.password_file).read_bytes()

    def server(self, sock: zmq.Socket) -> None:
        """Make a binding socket a PLAIN server (before it binds)."""
        sock.plain_server = True

    def client(self, sock: zmq.Socket) -> None:
        """Make a connecting socket a PLAIN client of the run (before it connects)."""
        sock.plain_username = self.user.encode()
        sock.plain_password = self._password

    def admit(self, mechanism: bytes, credentials: list[bytes]) -> str | None:
        """The peer's user id (its username) if it gave the run's password, else None."""
        if mechanism != b"PLAIN" or len(credentials) != 2 or not hmac.compare_digest(credentials[1], self._password):
            return None
        return credentials[0].decode(errors="replace")


class Gate:
    """A process's ZAP handler, on a thread of its own: libzmq asks it about every peer that connects to
    a server socket, and it admits those one of its ``auths`` admits (the run's own) and counts the others, which
    never reach a node. Start it before the first server socket binds; stop it before the context
    terminates. (A peer that does not even speak the mechanism fails libzmq's handshake first.)"""

    def __init__(self, ctx: zmq.Context, *auths: Curve | Plain) -> None:
        self.auths = auths  # a process of a graph across hosts has both: tcp to other hosts, ipc on its own
        self.refused = 0
        self._zap = ctx.socket(zmq.REP)
        self._zap.linger = 0
        self._zap.bind(_ZAP)
        self._stop = ctx.socket(zmq.PAIR)
        self._stop.linger = 0
        self._stop.bind(f"inproc://emgflow-gate-{id(self)}")
        self._stop_in = ctx.socket(zmq.PAIR)
        self._stop_in.linger = 0
        self._stop_in.connect(f"inproc://emgflow-gate-{id(self)}")
        self._thread = threading.Thread(target=self._serve, name="gate", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._zap, zmq.POLLIN)
        poller.register(self._stop_in, zmq.POLLIN)
        while self._stop_in not in dict(poller.poll()):
            version, request_id, _domain, _address, _identity, mechanism, *credentials = self._zap.recv_multipart()
            user = next((u for a in self.auths if (u := a.admit(mechanism, credentials)) is not None), None)
            if user is None:
                self.refused += 1
            self._zap.send_multipart([version, request_id, b"200" if user is not None else b"400",
                                      b"OK" if user is not None else b"not of this run", (user or "").encode(), b""])
        for sock in (self._zap, self._stop_in):
            sock.close()

    def stop(self) -> None:
        self._stop.send(b"")
        self._thread.join()
        self._stop.close()
