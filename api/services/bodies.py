"""Request bodies checked against their pydantic model, with a 422 naming each bad field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from store.errors import Unprocessable

M = TypeVar("M", bound=BaseModel)


def validate_body(model: type[M], request: dict[str, Any]) -> M:
    """`request` as a `model`; raises `Unprocessable` (422) whose `errors` give each bad
    field's dotted path (`loc`, "body" for the whole) and reason, the first five in its
    message."""
    try:
        return model.model_validate(request)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]) or "body", "msg": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
        raise Unprocessable(detail, errors=errors) from None
