"""The JSON error body both apps answer with, in OAuth 2.0's shape (RFC 6749 section 5.2)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response


def problem(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": error, "error_description": description}
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def http_problem(err: Any) -> Response:
    """A werkzeug HTTPException (``abort(404, "...")``) as that body."""
    return problem(err.code, err.name.lower().replace(" ", "_"), err.description)
