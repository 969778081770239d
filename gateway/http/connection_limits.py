"""What a connection may cost before it has sent a request: read deadlines and a cap per source.

aiohttp (3.14) has no header or body read timeout of its own, and keeps every connection it
accepts. Three limits, wired where the server starts (`serve` here, used by `gateway serve`, and
the test fixture):

* **Head deadline.** aiohttp's keep-alive timer runs from the moment a connection is made (and
  again after each answer) and closes the connection if by then the handler is still waiting
  for a complete request head; bytes trickling in do not reset it (aiohttp
  `web_protocol.RequestHandler._process_keepalive`). So `keepalive_timeout=read_timeout` is a
  head deadline: a connection that has not sent a whole request head within it is closed.
  Requests being handled (an event stream, a slow answer) are never cut by it.
* **Body deadline.** `body_deadline` gives a request's body the same deadline from the moment its
  head arrived: if the handler is still waiting for body bytes by then, its read fails and the
  answer is 408 (aiohttp then closes the connection, whose body was not read to its end).
* **Connections per source.** At most `per_source` open connections from one address; the next
  are closed at once, before aiohttp reads a byte. Trusted proxies are exempt (every client
  behind them shares their address; they enforce their own limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from gateway.domain.errors import ErrorCode, Refusal
from gateway.http.client_address import TrustedProxies
from gateway.settings import Settings

__all__ = ["ConnectionCap", "body_deadline", "head_deadline", "serve", "start_server"]

STOP_SECONDS = 5.0  # what open requests get to finish when the server stops
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def head_deadline(settings: Settings) -> float:
    """aiohttp's `keepalive_timeout`, which is our head deadline (see the module docstring)."""
    return settings.read_timeout_seconds


class _BodyLate(Exception):
    """Raised into a body read that outlived its deadline."""


def body_deadline(seconds: float) -> Middleware:
    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        content = request.content

        def expire() -> None:
            if not content.is_eof():  # still waiting for the body: wake the reader with an error
                content.set_exception(_BodyLate())

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        except _BodyLate:
            raise Refusal(
                ErrorCode.BODY_TIMEOUT, "The request body did not arrive in time."
            ) from None
        finally:
            timer.cancel()

    return deadline


class ConnectionCap:
    """Counts open connections per source address and closes those past `per_source`."""

    def __init__(self, per_source: int, trusted: TrustedProxies | None = None) -> None:
        if per_source < 1:
            raise ValueError("per_source must be positive")
        self._per_source = per_source
        self._trusted = trusted or TrustedProxies()
        self._open: Counter[str] = Counter()
        self._source_of: dict[RequestHandler, str] = {}
        self.refused = 0

    def open_from(self, source: str) -> int:
        return self._open[source]

    def install(self, server: Server) -> None:
        """Wrap the server's connection bookkeeping (called by each new connection's handler
        before it reads anything)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            peer = transport.get_extra_info("peername")
            source = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
            if source not in self._trusted:
                if self._open[source] >= self._per_source:
                    self.refused += 1
                    transport.abort()  # never registered: nothing of it is kept
                    return
                self._open[source] += 1
                self._source_of[handler] = source
            made(handler, transport)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            source = self._source_of.pop(handler, None)
            if source is not None:
                self._open[source] -= 1
                if self._open[source] <= 0:
                    del self._open[source]
            lost(handler, exc)

        # aiohttp's Server has no hook for this; its two methods are the bookkeeping we extend.
        setattr(server, "connection_made", connection_made)  # noqa: B010
        setattr(server, "connection_lost", connection_lost)  # noqa: B010


async def start_server(
    app: web.Application,
    host: str,
    port: int,
    settings: Settings,
    *,
    stop_seconds: float = STOP_SECONDS,
) -> tuple[web.AppRunner, ConnectionCap]:
    """Start `app` on host:port with the limits above; `await runner.cleanup()` stops it,
    giving open requests `stop_seconds` to finish (tests that stop with streams still open
    give less)."""
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=stop_seconds,
        keepalive_timeout=head_deadline(settings),
    )
    await runner.setup()
    assert runner.server is not None
    cap = ConnectionCap(settings.connections_per_source, TrustedProxies(settings.trusted_proxies))
    cap.install(runner.server)
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, cap


def serve(
    app: web.Application,
    host: str,
    port: int,
    settings: Settings,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM (what `web.run_app` did, with the limits); `on_listening`
    is called once the socket is bound."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        runner, _ = await start_server(app, host, port, settings)
        if on_listening is not None:
            on_listening()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
