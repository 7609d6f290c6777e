"""The error answers each route documents in the OpenAPI document (bodies in ``schemas``)."""

from __future__ import annotations

from typing import Any

from fusionrec.serving.schemas import ErrorBody, ValidationErrorBody

__all__ = ["ERRORS", "READ_ERRORS", "ITEM_ERRORS", "ADMIN_ERRORS"]


def _e(description: str, model: type = ErrorBody) -> dict[str, Any]:
    return {"model": model, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _e("The body could not be read"),
    401: _e("Missing or unknown API key"),
    403: _e("Revoked API key, or a key without the scope the route needs"),
    413: _e("Request body larger than the service's max_body_bytes"),
    422: _e(
        "The request does not fit the schema (a JSON body needs 'Content-Type: application/json')",
        ValidationErrorBody,
    ),
    431: _e("Request headers larger than the service's max_header_bytes"),
    503: _e("No model loaded yet"),
}
READ_ERRORS = ERRORS
ITEM_ERRORS = {**ERRORS, 404: _e("Unknown item, user or genre")}
ADMIN_ERRORS = {
    **ERRORS,
    409: _e("The new version was refused; the previous model is still served"),
}
