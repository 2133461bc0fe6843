"""The OpenAPI document: every 4xx and 5xx an operation returns is a problem JSON.

FastAPI describes a validation error with its own `HTTPValidationError`, but
`api.errors` answers every error with RFC 9457 problem JSON. This rewrites each
error response of each operation to the `Problem` schema under
`application/problem+json`, and adds `4XX` and `5XX` to every operation: any
of them may meet a missing key, a database outage (503), or an internal error.
Clients and schemathesis then check errors against what is really sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_JSON
from api.schemas import Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _problems_everywhere(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problems_everywhere(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, response in list(responses.items()):
                if code[0] in "45":
                    responses[code] = problem_response(response.get("description", "error"))
            responses.setdefault("4XX", problem_response("client error (problem JSON)"))
            responses.setdefault("5XX", problem_response("server or dependency error"))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
