"""uvicorn's HTTP/1.1 protocol (h11) with a deadline on each request's line and headers.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but sets no deadline on a
connection that never completes its headers: a client sending a byte a second, or nothing at
all, would hold it for ever. :class:`HeaderDeadlineProtocol` answers 408 and closes such a
connection ``timeout_headers`` seconds after it opened, or after the first byte of a later
request on a kept-alive connection. Bodies have their own deadline in the app
(:mod:`emotion.serve.uploads`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT = 10.0
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 37\r\nconnection: close\r\n\r\nrequest headers not received in time\n"
)


class ServeConfig(uvicorn.Config):
    """uvicorn's config plus ``timeout_headers`` (seconds), read by the protocol below."""

    def __init__(
        self, app: Any, *, timeout_headers: float = DEFAULT_HEADER_TIMEOUT, **kwargs: Any
    ) -> None:
        super().__init__(app, http=HeaderDeadlineProtocol, **kwargs)
        self.timeout_headers = timeout_headers


class HeaderDeadlineProtocol(H11Protocol):
    """h11 with a deadline on the request line and headers (408, then the connection closes)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.timeout_headers = getattr(config, "timeout_headers", DEFAULT_HEADER_TIMEOUT)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of a further request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.timeout_headers, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        # h11 sends a response only to a request it has read: these bytes are written as they are
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()
