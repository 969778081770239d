"""The OpenAPI document, generated from the one routes table the server is built from."""

from __future__ import annotations

from typing import Any

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


PATH_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {"description": "Success", "content": {"application/json": {}}}
        for status in route.statuses
    }
    responses["default"] = {
        "description": "A refusal with a stable code",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{route.handler.__name__}_{len(route.path)}",
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
    return operation


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
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
    for name, field in model.model_fields.items():
        prop = dict(schema["properties"][name])
        # Optional parameters are simply left out: the null branch is not a query value.
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:
            prop.update(branches[0])
        if "$ref" in prop:  # an enum: inline it (a parameter has no components to point to)
            prop = {**definitions[prop.pop("$ref").rsplit("/", 1)[1]], **prop}
        prop.pop("title", None)
        if prop.get("default", 0) is None:
            del prop["default"]
        parameters.append(
            {"name": name, "in": "query", "required": field.is_required(), "schema": prop}
        )
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
        "info": {"title": "Safeguarding gateway", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }
