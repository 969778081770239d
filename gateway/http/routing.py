"""One route declaration, from which both the router and the OpenAPI document are built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel


@dataclass(frozen=True)
class Route:
    """A JSON route: how it is called, what it takes and what it answers.

    `operation_id` is the name a generated client gives the call (`createStaff`): stable,
    declared here once. `response` is the model of a success answer's body; views render
    through the same models, so the document and the answer cannot drift apart.
    """

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    public: bool = False
    statuses: tuple[int, ...] = (200,)
    operation_id: str = ""
    response: type[BaseModel] | None = None
