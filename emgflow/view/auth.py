"""Who may look: on loopback anyone on this machine; beyond it only a browser that shows the token.

The token comes once in the URL (``?token=...``); the answer sets it as a same-site, HTTP-only
cookie so the page's own requests (scripts, WebSocket, stop, hand frames) carry it without it
being written into each of them.
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse

COOKIE = "emgflow_view"
Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def needs_token(host: str) -> bool:
    """Listening on anything but a loopback address (a name, 0.0.0.0, a LAN address) needs a token."""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TokenGate:
    """ASGI middleware: refuses every HTTP request (403) and WebSocket (closed before accept) that
    carries neither the token in its query nor the cookie; ``token=None`` lets everything in."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        cookie = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookie.load(value.decode("latin-1"))
        shown = cookie[COOKIE].value if COOKIE in cookie else ""
        if secrets.compare_digest(query, self.token):
            return await self.app(scope, receive, self._setting_cookie(send) if scope["type"] == "http" else send)
        if shown and secrets.compare_digest(shown, self.token):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()  # the connect event; closing before accepting answers 403
            return await send({"type": "websocket.close", "code": 1008})
        await PlainTextResponse("403: this view needs its token: open the URL that emgflow printed when it started",
                                status_code=403)(scope, receive, send)

    def _setting_cookie(self, send: Any) -> Any:
        async def wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                header = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", header)]}
            await send(message)
        return wrapped
