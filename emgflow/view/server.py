"""The view's web server: one page, one WebSocket per browser, a stop button, the hand's frames.

It runs in a thread beside the Supervisor (uvicorn + starlette) and reads the Supervisor only
through its public surface. Each browser gets the newest table every TICK_S and the new rows of
the streams it watches; streams are tapped only while a browser watches them and only once their
producer runs (a tap that subscribed earlier would count as one of the consumers the producer
waits for before it may start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..graph import Graph
from ..supervisor import NodeProc
from .auth import TokenGate
from .hand import HandFrames
from .model import StatsModel, layout
from .streams import Streams

STATIC = Path(__file__).with_name("static")
POLL_S = 0.1          # taps are drained this often
TICK_S = 0.5          # every browser gets a new table this often (the issue asks for twice a second)
MAX_ROWS = 2500       # rows of one stream sent in one tick at most (a new browser gets the newest)
END_FLUSH_S = 2.0     # after the graph stops, how long the browsers have to receive the final table
NICE = 10             # the view's threads yield the CPU to the graph's nodes (Linux: nice is per thread)


class Run(Protocol):
    """What the view reads of a run: a ``Supervisor``, or an ``attach.AttachedRun``."""

    graph: Graph
    procs: dict[str, NodeProc]

    def request_stop(self) -> None: ...


@dataclass(eq=False)   # one per page, told apart by identity
class Client:
    """One open page: the streams it watches and how far it has read each one."""

    watch: set[str] = field(default_factory=set)
    cursors: dict[str, int] = field(default_factory=dict)
    ended: bool = False


def _rounded(y: np.ndarray) -> list[list[float]]:
    """Columns of ``y`` with five significant digits of the block's largest value (short JSON)."""
    top = float(np.max(np.abs(y))) if y.size else 0.0
    decimals = max(0, 5 - math.ceil(math.log10(top))) if top > 0 else 0
    return np.round(y.T.astype(np.float64), decimals).tolist()


class View:
    """``View(sup).start()`` serves the page; ``close(code)`` shows the final table, then stops."""

    def __init__(self, sup: Run, *, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None) -> None:
        self.sup, self.host, self.port, self.token = sup, host, port, token
        self.streams = Streams(sup.endpoints())
        self.model = StatsModel(sup.graph)
        self.hands = HandFrames(sup.graph)
        self.init = {"type": "init", "graph": layout(sup.graph), "streams": sorted(self.streams.endpoints),
                     "hands": sorted(self.hands.folders)}
        self.clients: set[Client] = set()
        self.latest: dict[str, Any] = {}
        self.new_tick: asyncio.Condition | None = None   # made in the server's loop; wakes the pages
        self.closing = False
        self.exit_code: int | None = None
        self.ended = threading.Event()
        self.t0 = time.monotonic()
        routes = [Route("/", self._index), Route("/api/stop", self._stop, methods=["POST"]),
                  Route("/hand/{node}.png", self._hand), WebSocketRoute("/ws", self._ws),
                  Mount("/static", StaticFiles(directory=STATIC))]
        self.app = TokenGate(Starlette(routes=routes, lifespan=self._lifespan), token)
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle (called from the Supervisor's thread) -------------------------------------------
    def start(self) -> str:
        """Bind (raising OSError at once if the port is taken), serve in a thread, return the URL."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self._serve, args=(sock,), name="view", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10.0
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise OSError(f"the view did not start on {self.host}:{self.port}")
        return self.url

    def _serve(self, sock: socket.socket) -> None:
        """The server's thread, and the tap threads it starts (they inherit it), run niced."""
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        self.server.run(sockets=[sock])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def close(self, exit_code: int | None) -> None:
        """Send every page the final table and the graph's exit code (None: the graph goes on, only
        the view closes), then stop serving."""
        self.exit_code, self.closing = exit_code, True
        self.ended.wait(END_FLUSH_S + 1.0)
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5.0)

    # --- the shared state, updated in the server's event loop --------------------------------------
    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.new_tick = asyncio.Condition()
        task = asyncio.create_task(self._poll())
        try:
            yield
        finally:
            task.cancel()
            self.streams.close()

    def _started(self) -> bool:
        return all(p.state not in ("new", "starting", "ready") for p in self.sup.procs.values())

    async def _poll(self) -> None:
        last_tick = 0.0
        while True:
            procs = self.sup.procs
            wanted = set().union(*(c.watch for c in self.clients)) if self.clients else set()
            running = {s for s in wanted if procs[s.split(".", 1)[0]].state == "running"}
            self.streams.keep(running | (wanted & set(self.streams.open)))
            self.streams.poll()
            now = time.monotonic()
            if self.closing or now - last_tick >= TICK_S:
                last_tick = now
                async with self.new_tick:
                    self.latest = self._tick(now)
                    self.new_tick.notify_all()
            if self.closing:
                await self._flush_end()
                return
            await asyncio.sleep(POLL_S)

    def _tick(self, now: float) -> dict[str, Any]:
        return {"type": "end" if self.closing else "tick", "exit_code": self.exit_code,
                "elapsed": now - self.t0, "stats": self.model.snapshot(self.sup.procs, now),
                "latency": self.streams.latency.snapshot(),
                "hands": self.hands.latest() if self._started() else {},
                "taps": {name: w.counts() for name, w in self.streams.open.items()}}

    async def _flush_end(self) -> None:
        deadline = time.monotonic() + END_FLUSH_S
        while any(not c.ended for c in self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.ended.set()

    # --- routes -------------------------------------------------------------------------------------
    async def _index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _stop(self, request: Request) -> Response:
        # A JSON body type makes a cross-site form post impossible without a CORS preflight.
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "send Content-Type: application/json"}, status_code=415)
        self.sup.request_stop()
        return JSONResponse({"stopping": True})

    async def _hand(self, request: Request) -> Response:
        png = self.hands.png(request.path_params["node"])
        if png is None:
            return Response("no frame yet", status_code=404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        client = Client()
        self.clients.add(client)
        listener = asyncio.create_task(self._listen(ws, client))
        try:
            await ws.send_text(json.dumps(self.init))
            sent: dict[str, Any] = {}
            while not client.ended:
                async with self.new_tick:
                    await self.new_tick.wait_for(lambda seen=sent: self.latest is not seen)
                sent = msg = self.latest
                await ws.send_text(json.dumps({**msg, "scopes": self._scopes(client)}))
                client.ended = msg["type"] == "end"
        except (WebSocketDisconnect, RuntimeError):
            pass  # the page went away
        finally:
            client.ended = True
            listener.cancel()
            self.clients.discard(client)

    async def _listen(self, ws: WebSocket, client: Client) -> None:
        """``{"watch": ["node.port", ...]}`` from the page: the streams it shows."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            async for text in ws.iter_text():
                try:
                    watch = json.loads(text)["watch"]
                    if not isinstance(watch, list) or not all(isinstance(s, str) for s in watch):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    await ws.send_text(json.dumps({"type": "error", "text": 'expected {"watch": ["node.port", ...]}'}))
                    continue
                unknown = [s for s in watch if s not in self.streams.endpoints]
                if unknown:
                    await ws.send_text(json.dumps({"type": "error", "text": f"no such stream: {', '.join(unknown)}"}))
                client.watch = {s for s in watch if s in self.streams.endpoints}

    def _scopes(self, client: Client) -> dict[str, Any]:
        out = {}
        for name in client.watch:
            w = self.streams.open.get(name)
            if w is None or w.scope.y is None:
                continue
            s = w.scope
            cursor, t, y = s.since(max(client.cursors.get(name, 0), s.total - MAX_ROWS))
            client.cursors[name] = cursor
            out[name] = {"t": t.tolist(), "y": _rounded(y), "rate": s.rate, "step": s.step, "columns": s.columns}
        return out
