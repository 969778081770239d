"""Third-party browser code the gateway serves itself: LiveKit's JavaScript client.

The `livekit-client` package is installed from the npm registry by the project's setup
(scripts/test, scripts/run: `.cache/livekit-client`, never committed) and served from this
gateway at `/static/vendor/livekit-client.js`, so a join page fetches nothing from anywhere
else. Read once at start-up; without it the route answers 404 and a LiveKit session's page
says its video cannot start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from gateway.http.pages import SECURITY_HEADERS

__all__ = ["LIVEKIT_CLIENT_PATH", "default_livekit_client", "vendor_routes"]

LIVEKIT_CLIENT_PATH = "/static/vendor/livekit-client.js"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default_livekit_client() -> Path:
    """Where the project's setup installs livekit-client's ES module build (beside the
    package, in a source checkout)."""
    root = Path(__file__).resolve().parents[2]
    return root / ".cache/livekit-client/node_modules/livekit-client/dist/livekit-client.esm.mjs"


def vendor_routes(livekit_client: Path | None) -> tuple[tuple[str, str, Handler], ...]:
    path = livekit_client or default_livekit_client()
    try:
        body = path.read_bytes()
    except OSError:
        return ()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=body,
            headers={
                **SECURITY_HEADERS,
                "Cache-Control": "no-cache",
                "Content-Type": "text/javascript; charset=utf-8",
            },
        )

    return (("GET", LIVEKIT_CLIENT_PATH, serve),)
