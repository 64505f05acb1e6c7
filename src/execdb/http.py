"""HTTP plumbing shared by every router: error answers, the body size limit, links.

Every error is JSON `{"message": ...}` naming what was wrong; nothing answers with a stack
trace. A database that cannot be reached is a 503 the client may retry; what the database
refused because of the request itself is a 400 (execdb.dbfaults tells them apart).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from execdb.dbfaults import Fault, classify
from execdb.errors import ExecDBError, InvalidInput
from execdb.services import Services

log = logging.getLogger("execdb")


async def services_of(request: Request) -> Services:
    # async on purpose: FastAPI runs plain-function dependencies on a thread pool.
    return get_services(request)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(services_of)]


def base_url(request: Request) -> str:
    """The public root URL: the `base_url` setting, else what the request was sent to."""
    configured = get_services(request).settings.base_url
    if configured:
        return configured.rstrip("/")
    scope = request.scope
    host = request.headers.get("host") or "{}:{}".format(*scope["server"])
    return f"{scope['scheme']}://{host}{scope.get('root_path', '')}"


def _field(loc: tuple[int | str, ...]) -> str:
    # Query lists ("state=A,B") are one parameter to the user: drop their item index.
    drop = {"body", "query", "path", "header"}
    parts = [
        str(p) for p in loc if p not in drop and not (loc[0] == "query" and isinstance(p, int))
    ]
    return ".".join(parts) or "body"


def _errors_message(errors: Sequence[Mapping[str, Any]]) -> str:
    problems = []
    for error in errors:
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        loc = tuple(error.get("loc", ()))
        kind = error.get("type")
        if kind in ("model_attributes_type", "model_type") or (
            loc == ("body",) and kind == "dict_type"
        ):
            problems.append(NOT_A_JSON_OBJECT)
            continue
        if kind == "json_invalid":
            problems.append(f"the body is not valid JSON: {error.get('ctx', {}).get('error', msg)}")
            continue
        if kind == "extra_forbidden":
            msg = "unknown field" if loc and loc[0] == "body" else "unknown parameter"
        given = error.get("input")
        if isinstance(given, str | int | float) and len(str(given)) <= 80:
            msg = f"{msg} (got {given!r})"
        field = _field(loc)
        # Model-level checks name their field themselves ("blame: only a CRASHED ...").
        problems.append(
            msg if field == "body" or msg.startswith(f"{field}:") else f"{field}: {msg}"
        )
    return "; ".join(dict.fromkeys(problems)) or "invalid request"


def validation_message(exc: RequestValidationError) -> str:
    """One line naming each invalid field or parameter, as the API's 400 answers say it."""
    return _errors_message(exc.errors())


NOT_A_JSON_OBJECT = "the body must be a JSON object, sent with Content-Type: application/json"
_JSON_MEDIA_TYPE = re.compile(r"\s*application/(?:[\w.-]+\+)?json\s*(?:;|$)", re.IGNORECASE)

Model = TypeVar("Model", bound=BaseModel)


async def json_body(request: Request, model: type[Model]) -> Model:
    """The request's body as `model`, decoded and checked in one pass by pydantic (with the
    standard library's parser as a fallback, below).

    For the routes that take nearly all the traffic: creating jobs and reporting. A FastAPI
    body parameter decodes the JSON with the standard library, parses the Content-Type header
    with the email package, then validates the decoded objects; this and answering with
    `json_answer` took a report's CPU time down by about a fifth (docs/benchmarks.md). The
    errors are the API's usual 400s naming the field. Such a route declares its body for the
    OpenAPI document with `openapi_extra=json_body_schema(model)`.
    """
    if not _JSON_MEDIA_TYPE.match(request.headers.get("content-type", "")):
        raise InvalidInput(NOT_A_JSON_OBJECT)
    try:
        body = await request.body()
    except ClientDisconnect:
        raise InvalidInput("the client went away before sending the whole body") from None
    if not body.strip():
        raise InvalidInput(NOT_A_JSON_OBJECT)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        # Pydantic's parser refuses some JSON that the standard library takes: escaped lone
        # surrogates (log text decoded with surrogateescape, say; ExecDB keeps such text
        # with U+FFFD in their place), a byte order mark, UTF-16. Those are not refused.
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):  # not JSON to either: pydantic's error says why
            pass
        else:
            try:
                return model.model_validate(decoded)
            except ValidationError as exc:
                errors = exc.errors(include_url=False)
    raise InvalidInput(_errors_message([{**e, "loc": ("body", *e["loc"])} for e in errors]))


_DOCUMENTED_BODIES: dict[str, type[BaseModel]] = {}


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI requestBody of a route that reads its body with `json_body(model)`; the
    application adds the model's schema to the document's components (`body_components`)."""
    _DOCUMENTED_BODIES[model.__name__] = model
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def body_components() -> dict[str, Any]:
    """The component schemas of the bodies declared with `json_body_schema`."""
    components: dict[str, Any] = {}
    for name, model in _DOCUMENTED_BODIES.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[name] = schema
    return components


def json_answer(model: BaseModel, status_code: int = 200) -> Response:
    """`model` as a JSON answer, serialized once. (Given the model itself, FastAPI would first
    validate it again against the route's response_model, which then only documents it.)"""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse({"message": message, **extra}, status_code=status, headers=headers)


def register_handlers(app: FastAPI) -> None:
    @app.exception_handler(ExecDBError)
    async def _domain(request: Request, exc: ExecDBError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such resource: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        response = error_response(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        classified = classify(exc)
        if classified.fault is Fault.UNAVAILABLE:
            # One line, without the statement: an outage would otherwise flood the log.
            log.warning("database unavailable: %s: %s", exc.__class__.__name__, classified.reason)
            return error_response(503, "the database is unavailable; try again shortly")
        if classified.fault is Fault.INVALID:
            log.info(
                "database refused %s %s: %s", request.method, request.url.path, classified.reason
            )
            return error_response(400, f"the database refused the request: {classified.reason}")
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; it has been logged")


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 before the app reads them.

    Starlette's own limit (FastAPI's `max_body_size`) answers in plain text, and only once the
    route reads the body; this one answers JSON like every other error, before any work.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read up to the limit, then hand the body on.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"the request body is larger than the {self.max_bytes}-byte limit"
        )
        await response(scope, receive, send)
