"""The join page and its static files: one page for every participant (R8, R17, R19).

The invite token travels in the URL fragment (``/join#<token>``): browsers never send a
fragment to a server, so the token stays out of access logs, proxies and Referer headers. The
page's script reads it, removes it from the address bar and talks to the JSON API.

Everything served here is fixed at start-up (no user data is ever rendered into HTML), and
every answer carries a strict Content-Security-Policy: scripts, styles and connections only
from this origin, media only from this origin or local streams, nothing framed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from aiohttp import web

__all__ = ["MEDIA_ORIGINS", "PAGE_ROUTES", "SECURITY_HEADERS", "join_page", "static_file"]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=()",
    }
)

_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
    }
)


def _load_static() -> Mapping[str, tuple[bytes, str]]:
    """Every servable static file, read once: the allow-list is what exists at start-up.

    Keyed by the path under ``static/`` (``session.css``, ``session/main.js``): the page's
    script is a set of ES modules in ``static/session/`` that import each other by relative
    URL, so each is served from its own path. Hidden files and unknown types are never served.
    """
    files: dict[str, tuple[bytes, str]] = {}
    if STATIC.is_dir():
        for path in sorted(STATIC.rglob("*")):
            relative = path.relative_to(STATIC)
            content_type = _CONTENT_TYPES.get(path.suffix)
            hidden = any(part.startswith(".") for part in relative.parts)
            if path.is_file() and content_type is not None and not hidden:
                files[relative.as_posix()] = (path.read_bytes(), content_type)
    return MappingProxyType(files)


_STATIC_FILES = _load_static()
_JOIN_HTML = (TEMPLATES / "join.html").read_bytes()


def _headers(cache: str) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Cache-Control": cache}


#: Media servers the join page's script may connect to besides the gateway (a LiveKit server's
#: origin when organisations use LiveKit); set by the composition root.
MEDIA_ORIGINS = web.AppKey("media_origins", tuple)


async def join_page(request: web.Request) -> web.Response:
    """``GET /join``: the same page for everyone; the invite is read from the fragment."""
    headers = _headers("no-store")
    origins = request.app.get(MEDIA_ORIGINS, ())
    if origins:
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "connect-src 'self'", "connect-src 'self' " + " ".join(origins)
        )
    return web.Response(
        body=_JOIN_HTML,
        content_type="text/html",
        charset="utf-8",
        headers=headers,
    )


async def static_file(request: web.Request) -> web.Response:
    """``GET /static/<path>``: one plain route per shipped file, so nothing else can match."""
    # The route's own template, not the request's path: the file is the one the route was made
    # for, whatever encoding the client used to reach it.
    resource = request.match_info.route.resource
    name = resource.canonical.removeprefix("/static/") if resource is not None else ""
    found = _STATIC_FILES.get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    # "no-cache": the browser revalidates, so a new release is picked up at once.
    return web.Response(body=body, headers={**_headers("no-cache"), "Content-Type": content_type})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: (method, path, handler). Static files get one plain route each (no ``{name}`` pattern): the
#: allow-list is the router itself, and file names with dots never meet the id check that the
#: authentication middleware applies to path parameters.
PAGE_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/join", join_page),
    *(("GET", f"/static/{name}", static_file) for name in _STATIC_FILES),
)
