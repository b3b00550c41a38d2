"""Security headers on every response; a strict Content-Security-Policy on the pages.

No inline script or style is allowed anywhere the policy applies, so injected markup cannot run.
The interactive API docs (/docs, /redoc) load their own scripts and are left without the policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)
_DOCS_PATHS = ("/docs", "/redoc")
_WITHOUT_POLICY = tuple((name.encode(), value.encode()) for name, value in _ALWAYS)
_WITH_POLICY = (*_WITHOUT_POLICY, (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], path: str
) -> list[tuple[bytes, bytes]]:
    """An answer's raw headers plus the security headers its handler did not set itself."""
    extra = _WITHOUT_POLICY if path.startswith(_DOCS_PATHS) else _WITH_POLICY
    listed = list(headers)
    present = {name.lower() for name, _ in listed}
    return listed + [pair for pair in extra if pair[0] not in present]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", ()), path)
            await send(message)

        await self.app(scope, receive, send_with_headers)
