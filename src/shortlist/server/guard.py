"""The ASGI middleware in front of every route: the API key first, then the body, read up to its limit."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shortlist.server.auth import PUBLIC_PATHS, is_authorised, unauthorised_message
from shortlist.server.errors import error_body

__all__ = ["FORM_PATHS", "GuardMiddleware"]

#: Routes that take a form upload; every other POST body is JSON, whatever its Content-Type says.
FORM_PATHS = frozenset({"/api/similarity/csv"})

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class GuardMiddleware:
    """Check the API key, then read the body up to ``max_body_bytes`` (413 beyond), before the app sees it."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Answer 401/400/413 itself, or pass the request on with its body buffered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.api_key is not None and path not in PUBLIC_PATHS and not is_authorised(headers, self.api_key):
            body = error_body(path, 401, unauthorised_message())
            await _send_json(send, 401, body, {"WWW-Authenticate": "Bearer"})
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = (
            f"The request body is larger than the server's limit of {self.max_body_bytes:,} bytes: "
            "send fewer or shorter texts per request."
        )
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _send_json(send, 400, error_body(path, 400, "Content-Length is not a number."))
                return
            if int(length) > self.max_body_bytes:
                await _send_json(send, 413, error_body(path, 413, too_big))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_json(send, 413, error_body(path, 413, too_big))
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        buffered = b"".join(chunks)
        sent = False
        content_type = headers.get("content-type", b"").split(b";", 1)[0].strip().lower()
        if path not in FORM_PATHS and content_type in (b"", b"application/x-www-form-urlencoded", b"text/plain"):
            # `curl -d '{...}'` (Ollama's own examples) labels JSON as a form: read it as the JSON it is.
            raw = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
            scope = {**scope, "headers": [*raw, (b"content-type", b"application/json")]}

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": buffered, "more_body": False}
            return dict(await receive())

        await self.app(scope, replay, send)
