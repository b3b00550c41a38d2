"""The one place that talks HTTP to Meta's Conversions API.

Every answer becomes a value (`Accepted` or `domain.delivery.GraphError`) so the dispatcher can hand
it to the pure `classify()` policy without try/except around each send. The client owns a single
pooled `httpx.AsyncClient` because a TLS handshake per batch would cost more than the batch itself.

The access token travels only inside the pre-serialised body. It is never put in a URL, never
logged, and it is scrubbed from Meta's own error messages before they become values that end up
in the database and on the admin page.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from retargeting.domain.delivery import GraphError
from retargeting.graph import errors

DEFAULT_TIMEOUT_SECONDS = 1.5  # Meta answers most requests in < 600 ms and advises 1,500 ms
DEFAULT_MAX_CONNECTIONS = 16
KEEPALIVE_EXPIRY_SECONDS = 30.0  # idle pooled connections are dropped after this long
USER_AGENT = "retargeting-capi/0.1"

_PIXEL_ID = re.compile(r"[0-9]+")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+")
_TOKEN_FIELD = re.compile(rb'"access_token"\s*:\s*("(?:[^"\\]|\\.)*")')
_TOKEN_SHAPE = re.compile(r"EAA[A-Za-z0-9]{20,}")  # Meta's token prefix: scrub lookalikes too
_REDACTED = "[redacted]"

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """Meta's success answer: how many events it took, and the trace id support asks for."""

    events_received: int
    fbtrace_id: str | None
    messages: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class GraphTimeouts:
    """Per-phase timeouts plus an overall deadline, in seconds.

    httpx applies each phase limit separately, so a slow connect followed by a slow read could
    take twice the budget; `total` caps the whole request so Meta's advice holds end to end.
    """

    connect: float
    read: float
    write: float
    pool: float
    total: float | None = None

    def __post_init__(self) -> None:
        phases = (self.connect, self.read, self.write, self.pool)
        if any(value <= 0 for value in phases) or (self.total is not None and self.total <= 0):
            raise errors.GraphConfigurationError("timeouts must be positive numbers of seconds")

    @classmethod
    def from_total(cls, seconds: float = DEFAULT_TIMEOUT_SECONDS) -> GraphTimeouts:
        """One budget for the whole request, as Meta phrases its advice."""
        return cls(connect=seconds, read=seconds, write=seconds, pool=seconds, total=seconds)

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class GraphClient:
    """Sends pre-serialised request bodies to `{base_url}/{version}/{pixel_id}/events`."""

    def __init__(
        self,
        base_url: str,
        version: str,
        timeouts: GraphTimeouts,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_connections < 1:
            raise errors.GraphConfigurationError("max_connections must be at least 1")
        self._endpoint = f"{_checked_base_url(base_url)}/{_checked_version(version)}"
        self._timeouts = timeouts
        if transport is None:
            # Built explicitly so proxies and .netrc from the environment cannot redirect traffic
            # or add credentials; HTTP/1.1 keep-alive, no silent retries (the outbox retries).
            limits = httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            )
            transport = httpx.AsyncHTTPTransport(limits=limits, http1=True, http2=False)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeouts.to_httpx(),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"GraphClient(endpoint={self._endpoint!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, pixel_id: str, body: bytes) -> Accepted | GraphError:
        """POST one request body; network and HTTP problems come back as `GraphError` values.

        Raises `errors.InvalidPixelId` (a `ValueError`) when the pixel id is not all digits,
        because it is interpolated into the URL path.
        """
        if not _PIXEL_ID.fullmatch(pixel_id):
            raise errors.InvalidPixelId(pixel_id)
        url = f"{self._endpoint}/{pixel_id}/events"
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeouts.total):
                response = await self._http.post(url, content=body)
        except TimeoutError:  # the overall deadline, which only exists when `total` is set
            return self._failed(pixel_id, started, f"timed out after {self._timeouts.total}s")
        except httpx.TimeoutException as exc:
            return self._failed(pixel_id, started, self._timeout_message(exc))
        except httpx.RequestError as exc:
            detail = str(exc) or "no detail"
            return self._failed(pixel_id, started, f"{type(exc).__name__}: {detail}")
        answer = parse_answer(response.status_code, response.content)
        if isinstance(answer, GraphError):
            answer = _scrubbed(answer, body)
        logger.debug(
            "graph answered",
            extra={
                "action": "graph_answer",
                "pixel_id": pixel_id,
                "http_status": response.status_code,
                "error_code": answer.code if isinstance(answer, GraphError) else None,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return answer

    def _timeout_message(self, exc: httpx.TimeoutException) -> str:
        phases: dict[type[httpx.TimeoutException], tuple[str, float]] = {
            httpx.ConnectTimeout: ("connecting", self._timeouts.connect),
            httpx.ReadTimeout: ("reading the answer", self._timeouts.read),
            httpx.WriteTimeout: ("writing the request", self._timeouts.write),
            httpx.PoolTimeout: ("waiting for a pooled connection", self._timeouts.pool),
        }
        phase, seconds = phases.get(type(exc), ("waiting", self._timeouts.read))
        return f"timed out after {seconds:g}s {phase}"

    @staticmethod
    def _failed(pixel_id: str, started: float, message: str) -> GraphError:
        logger.warning(
            "graph request failed: %s",
            message,
            extra={
                "action": "graph_transport_error",
                "pixel_id": pixel_id,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return GraphError(message=message, http_status=None)


def parse_answer(status: int, content: bytes) -> Accepted | GraphError:
    """Map one HTTP answer to a value; pure, so every shape Meta might send is unit-testable."""
    try:
        payload: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        return GraphError(
            message=f"HTTP {status}: answer is not JSON ({len(content)} bytes)", http_status=status
        )
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return _graph_error(error, status)
        received = payload.get("events_received")
        if 200 <= status < 300 and _as_int(received) is not None:
            messages = payload.get("messages")
            return Accepted(
                events_received=_as_int(received) or 0,
                fbtrace_id=_as_str(payload.get("fbtrace_id")),
                messages=tuple(str(m) for m in messages) if isinstance(messages, list) else (),
            )
    return GraphError(message=f"HTTP {status}: unexpected JSON answer", http_status=status)


def _graph_error(error: dict[str, Any], status: int) -> GraphError:
    return GraphError(
        message=_as_str(error.get("message")) or f"HTTP {status}: error without a message",
        code=_as_int(error.get("code")),
        error_subcode=_as_int(error.get("error_subcode")),
        type=_as_str(error.get("type")),
        is_transient=error.get("is_transient") is True,
        error_user_msg=_as_str(error.get("error_user_msg")),
        fbtrace_id=_as_str(error.get("fbtrace_id")),
        http_status=status,
    )


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _scrubbed(error: GraphError, body: bytes) -> GraphError:
    """Meta may quote a malformed token back in its message; keep it out of stored errors."""
    token = _token_in(body)

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        if token:
            text = text.replace(token, _REDACTED)
        return _TOKEN_SHAPE.sub(_REDACTED, text)

    return dataclasses.replace(
        error, message=clean(error.message) or "", error_user_msg=clean(error.error_user_msg)
    )


def _token_in(body: bytes) -> str | None:
    # The token follows the events in `request_body()`, so the last match is the real field.
    match = _TOKEN_FIELD.search(body, max(0, body.rfind(b'"access_token"')))
    if match is None:
        return None
    try:
        token = orjson.loads(match.group(1))
    except orjson.JSONDecodeError:
        return None
    return token if isinstance(token, str) and len(token) >= 8 else None


def _checked_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise errors.GraphConfigurationError(f"Graph API URL is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise errors.GraphConfigurationError(
            "Graph API URL must be http(s)://host[:port], e.g. https://graph.facebook.com"
        )
    if url.userinfo or url.query or url.fragment:
        raise errors.GraphConfigurationError(
            "Graph API URL must not carry credentials, a query or a fragment: they leak into logs"
        )
    return base_url.rstrip("/")


def _checked_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise errors.GraphConfigurationError(
            f"Graph API version must look like v25.0, got {version!r}"
        )
    return version
