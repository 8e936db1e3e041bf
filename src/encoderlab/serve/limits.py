"""The request limits and the error every refusal uses.

Every refusal is an `APIError`, answered in OpenAI's error shape, so OpenAI clients show the message:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "input", "code": "too_many_texts"}}

Bad input is always a 4xx naming the field and the fix; 5xx means a bug in the server.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
               503: "service_unavailable"}


class APIError(Exception):
    """A refused request: HTTP status, a message saying what to change, and the request field it is about."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.param, self.code)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": param,
                      "code": code}}


def check_api_key(authorization: str | None, api_key: str | None) -> None:
    """`Authorization: Bearer KEY` against the server's key, in constant time; nothing to check without a key."""
    if api_key is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    # compare_digest takes the same time wherever the strings differ: the key cannot be guessed byte by byte
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
        raise APIError(401, "missing or wrong API key: send the header `Authorization: Bearer KEY` with the key "
                            "the server was started with (--api-key or ENCODERLAB_API_KEY)",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before the app parses any of it (Content-Length
    is checked first; a chunked body is counted as it arrives)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._too_large(send, declared.decode("latin-1"))
        chunks, size, more = [], 0, True
        while more:  # read the body here (bounded), then hand it to the app in one message
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(send, f"more than {size}")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, delivered = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: disconnect notices come from the server
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Callable, size: str) -> None:
        body = json.dumps(error_body(413, f"the request body has {size} bytes, over the server's limit of "
                                          f"{self.max_bytes}; send fewer texts per request (the server splits big "
                                          "batches itself) or raise --max-body-mb", "body",
                                     "body_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
