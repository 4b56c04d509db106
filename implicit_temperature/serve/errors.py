"""Errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}``.

:class:`APIError` is raised by handlers; :func:`install_handlers` turns it, pydantic's validation
errors (400, with the offending field as ``param``) and anything unexpected (500, with its
message; the server keeps serving) into that body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .protocol import ErrorInfo, ErrorResponse

log = logging.getLogger(__name__)

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    422: "invalid_request_error",
    500: "internal_server_error",
    503: "service_unavailable",
}


class APIError(Exception):
    """An error answered as ``status`` with an OpenAI error body."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_body(status: int, message: str, param: str | None = None, code: Any = None) -> dict:
    info = ErrorInfo(message=message, type=TYPES.get(status, "api_error"), param=param, code=code)
    return ErrorResponse(error=info).model_dump()


def error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(error_body(exc.status, exc.message, exc.param, exc.code), exc.status)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts, param = [], None
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        param = param or where
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown field {where!r} (check the spelling; see docs/serving.md)")
        else:
            parts.append(f"{where}: {err.get('msg')} (got {err.get('input')!r:.80})")
    return "; ".join(parts) or "invalid request", param


def install_handlers(app: FastAPI) -> None:
    """Register the OpenAI-shaped handlers on ``app``."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return JSONResponse(error_body(400, message, param, "invalid_value"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s", request.url.path)
        return JSONResponse(error_body(500, f"{type(exc).__name__}: {exc}"), 500)
