"""A leaner APIRoute for the event endpoints: the same contract, far less work per request.

FastAPI's generic request handling (dependency solving, body-parameter discovery, response
validation and serialisation) cost about 350 us of CPU per request, more than validating and
committing the event itself (an in-process ASGI loop: 590 us per widget view through FastAPI's
handler, 240 us through this one). The event endpoints are the platform's hot path and share one
shape: an ingest key, one JSON body model, one JSON answer. `IngestRoute` keeps everything FastAPI
derives from the endpoint's signature (the OpenAPI operation, the route table that the
authorization matrix walks) and replaces only the per-request work with code for that shape. It
reads the body by FastAPI's own rules, so callers see the same answers, errors included: 401 from
the same key check, 400 for an unreadable body, 422 in FastAPI's `detail[]` shape.
"""

from __future__ import annotations

import email.message
import functools
import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from retargeting.runtime import Runtime
from retargeting.web import deps
from retargeting.web.schemas_common_case import COMMON_CASE_OF

EventEndpoint = Callable[..., Awaitable[BaseModel]]
_ABSENT = object()


class IngestRoute(APIRoute):
    """For endpoints declared as `async def name(body: Model, runtime: RuntimeDep) -> Answer`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        parameters = list(inspect.signature(endpoint).parameters)
        if parameters != ["body", "runtime"]:
            raise TypeError(f"{endpoint.__name__} must take (body, runtime), not {parameters}")
        super().__init__(path, endpoint, **kwargs)
        # FastAPI wraps the handler in two exit stacks and a per-route exception layer, for
        # dependencies with `yield`; there are none here, and the app's exception handlers
        # (401, 422, 503, ...) answer whatever the handler raises just the same.
        self.app = self._serve
        # What `fast_lane.IngestFastLane` calls, from the top of the middleware stack.
        self.handle_request = self.get_route_handler()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle_request(Request(scope, receive, send))
        await response(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        body_type = typing.get_type_hints(self.endpoint)["body"]
        adapter: TypeAdapter[Any] = TypeAdapter(body_type)
        common_case: TypeAdapter[Any] = TypeAdapter(COMMON_CASE_OF.get(body_type, body_type))
        endpoint: EventEndpoint = self.endpoint
        status_code = self.status_code or 200

        async def handle(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            deps.check_ingest_authorization(request.headers.get("authorization"), runtime)
            body = _validated_body(common_case, adapter, await request.body(), request.headers)
            answer = await endpoint(body=body, runtime=runtime)
            return Response(
                answer.__pydantic_serializer__.to_json(answer),
                status_code,
                media_type="application/json",
            )

        return handle


def _validated_body(
    common_case: TypeAdapter[Any], adapter: TypeAdapter[Any], raw: bytes, headers: Headers
) -> Any:
    """The body model, parsed and validated in one pass over the bytes when it is valid.

    First as its common case (`schemas_common_case`), then as the model itself, which accepts
    the rarer shapes. `validate_json` costs 30% less than `json.loads` and then
    `validate_python` (4.0 against 5.6 us a batch event). Anything the model refuses goes the
    way FastAPI reads a body, so every error answer (400, 422 and their details) is FastAPI's.
    """
    content_type = headers.get("content-type")
    if raw and content_type and _is_json(content_type):
        for candidate in (common_case, adapter):
            try:
                return candidate.validate_json(raw)
            except ValidationError:
                pass  # the next, and in the end FastAPI's words
    return _validate(adapter, _parsed(raw, content_type))


def _parsed(raw: bytes, content_type: str | None) -> Any:
    """The body as FastAPI reads it: JSON when the content type says so, else the raw bytes."""
    if not raw:
        return _ABSENT
    if not content_type or not _is_json(content_type):
        return raw  # FastAPI's strict content type: no JSON without a JSON content type
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from exc
    except Exception as exc:  # not UTF-8, nested past the recursion limit, ...
        raise HTTPException(400, "There was an error parsing the body") from exc


@functools.lru_cache(maxsize=64)  # clients send one or two spellings; parsing one costs ~25 us
def _is_json(content_type: str) -> bool:
    """FastAPI's test: application/json or application/<anything>+json, parameters ignored."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _validate(adapter: TypeAdapter[Any], value: Any) -> Any:
    if value is _ABSENT:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return adapter.validate_python(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None
