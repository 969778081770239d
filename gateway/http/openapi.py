"""The OpenAPI document, generated from the one routes table the server is built from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from gateway.domain.errors import ErrorCode
from gateway.http.routes import ALL_ROUTES
from gateway.http.routing import Route

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
                "message": {"type": "string"},
                "request_id": {"type": "string", "description": "On unexpected failures"},
            },
        }
    },
}


DESCRIPTION = """The gateway's JSON API.

Integrations authenticate with the organisation's API key (`Authorization: Bearer ...`).

Participants (children, guardians, staff joining a session) have no key. They authenticate
with their personal invite token, sent as the `token` field of the JSON body of `/v1/join`,
`/v1/leave` and `/v1/live/*` (the invite link carries it in the URL fragment, which browsers
never send to a server), plus the device cookie `/v1/join` sets when the invite is first
redeemed (`deviceCookie`): an invite is bound to one device. Tokens expire with the invite and
can be revoked.

Refusals carry a stable `error.code`. A request that follows this document is refused only
for a rule (422 with a code, the message naming the accepted values where there is a list),
never for its shape.
"""

PATH_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}


ERROR_REF = {"$ref": "#/components/schemas/Error"}
# The refusals a route can give, by what it takes; the body's `error.code` says which.
REFUSALS = {
    "400": "The body or query does not follow this document (body_invalid, query_invalid ...)",
    "401": "No valid API key (unauthenticated)",
    "403": "The invite or credential does not allow this",
    "404": "No such thing in this organisation (not_found)",
    "409": "The session has ended (session_ended) or the record exists (conflict)",
    "413": "The body is too large (body_too_large)",
    "415": "The body is not application/json (unsupported_media_type)",
    "422": "Refused by the organisation's policy or a safeguarding rule; the message names "
    "the accepted values where there is a list (email_domain_not_allowed, "
    "vetting_kind_not_accepted, purpose_unknown, role_not_allowed, vetting_expired ...)",
    "429": "Too many attempts; Retry-After says when to try again",
    "503": "A dependency is unavailable; Retry-After says when to try again",
}


def _operation_id(route: Route) -> str:
    """The id declared on the route; a route added without one gets a readable one."""
    if route.operation_id:
        return route.operation_id
    first, *rest = route.handler.__name__.split("_")
    return first + "".join(part.title() for part in rest)


def _refusals(route: Route) -> list[str]:
    codes = ["400", "413", "415"] if route.body is not None else []
    if route.query is not None and not codes:
        codes.append("400")
    if route.public:
        codes += ["403", "429"]
    else:
        codes.append("401")
    if "{" in route.path:
        codes.append("404")
    if route.method != "GET":
        codes += ["409", "422"]
    return [*sorted(set(codes)), "503"]


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {}
    if route.response is not None:
        name = route.response.__name__
        schemas[name] = _schema(route.response, schemas, mode="serialization")
        success = {"schema": {"$ref": f"#/components/schemas/{name}"}}
    responses: dict[str, Any] = {
        str(status): {"description": "Success", "content": {"application/json": success}}
        for status in route.statuses
    }
    for code in _refusals(route):
        responses[code] = {
            "description": REFUSALS[code],
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    responses["default"] = {
        "description": "A refusal with a stable code",
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "responses": responses,
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": PATH_ID}
        for name in _path_params(route.path)
    ] + _query_params(route.query)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        name = route.body.__name__
        schemas[name] = _schema(route.body, schemas)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    operation["security"] = [] if route.public else [{"apiKey": []}]
    if route.public:
        # Participants carry no API key: the invite token in the body and, once an invite is
        # redeemed, the device cookie bound to it (see the security schemes' descriptions).
        operation["x-participant-auth"] = ["invite token in the body", "deviceCookie"]
    return operation


def _schema(
    model: type[BaseModel],
    schemas: dict[str, Any],
    mode: Literal["validation", "serialization"] = "validation",
) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    return schema


def _query_params(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    """Query parameters with the types and bounds the server checks (`parse_query`)."""
    if model is None:
        return []
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.get("$defs", {})
    parameters = []
    for field_name, field in model.model_fields.items():
        name = field.alias or field_name
        prop = dict(schema["properties"][name])
        # Optional parameters are simply left out: the null branch is not a query value.
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:
            prop.update(branches[0])
        if "$ref" in prop:  # an enum: inline it (a parameter has no components to point to)
            prop = {**definitions[prop.pop("$ref").rsplit("/", 1)[1]], **prop}
        prop.pop("title", None)
        description = prop.pop("description", None)
        if prop.get("default", 0) is None:
            del prop["default"]
        parameter = {"name": name, "in": "query", "required": field.is_required(), "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in ALL_ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Safeguarding gateway", "version": "1", "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The organisation's API key, for integrations.",
                },
                # Participant routes (`security: []`, `x-participant-auth`) prove who is
                # calling with the invite token in the JSON body (never a URL: OpenAPI has no
                # scheme for that, see info.description) plus this cookie once redeemed.
                "deviceCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "sgw_device_{invite}",
                    "description": "Set (HttpOnly, SameSite=Strict) by /v1/join when an invite "
                    "is first redeemed; named after the invite's first 16 characters. Later "
                    "calls with the same token must come with it: an invite is bound to one "
                    "device (invite_other_device otherwise).",
                },
            },
        },
    }
