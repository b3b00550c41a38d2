"""A pytest plugin that fails the run when a credential shows up where it must never be.

Checked for the whole run: the pixel's access token, personal access tokens and ingest API keys
never appear in a response (body or headers, Set-Cookie included), a page, a URL, or a log line.

* The registry: every secret `services.credentials.create_token()` / `create_api_key()` issue,
  every access token saved through `settings_store.write_pixel()` (which `update_pixel()`, the
  API, the pages and `tests.factories.make_pixel()` all use), and `factories.ACCESS_TOKEN`.
* The captures: every log record (message, arguments, `extra=` fields, traceback) through a
  root handler; every request URL and every response of an `httpx` client (Starlette's
  TestClient included); the URLs the Graph stand-in recorded; what browser tests hand to
  `capture()`; and the log files of live servers (`watch_file()`), scanned at the end.
* Request bodies and headers are not captures: sending a token is how it gets saved or checked.
  Answers of upstream fakes (the Graph stand-in, `httpx.MockTransport`) are not either: Meta
  quoting a token back is Meta's doing; what the app then stores, logs or shows is checked.

Each test's captures are scanned when it ends and then dropped, so memory stays flat. Random
bearer secrets (`rtp_`/`rtk_` + 43 characters) are found by their shape and looked up, so the
cost does not grow with the registry; other secrets (access tokens) are searched for literally:
the constants in every test, the ones saved during a test in that test (and in every live-server
log). A finding fails the run at the end, naming the test, the place and the secret's first four
characters and length, never the secret itself.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

MIN_SECRET_LENGTH = 16  # shorter "tokens" (fuzzed or invalid ones) would match by chance
BEARER_SHAPE = re.compile(r"rt[pk]_[A-Za-z0-9_-]{43}")
SESSION = "<session>"
_STANDARD_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
}


def describe(secret: str) -> str:
    """How a report names a secret: enough to tell which, too little to use it."""
    return f"{secret[:4]}… ({len(secret)} chars)"


@dataclass(frozen=True, slots=True)
class Finding:
    test: str
    where: str
    secret: str

    def __str__(self) -> str:
        return f"{self.test}: {describe(self.secret)} in {self.where}"


class Scanner:
    """The registry of secrets and the captures of the running test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bearer: set[str] = set()  # matched by shape, then looked up
        self.constants: set[str] = set()  # searched for in every test
        self.literals: set[str] = set()  # every other secret of the run (for live-server logs)
        self.test_literals: set[str] = set()  # the ones registered during the current test
        self.captures: list[tuple[str, str]] = []
        self.files: list[Path] = []
        self.upstreams: set[str] = set()  # origins of Graph stand-ins
        self.findings: list[Finding] = []
        self.test = SESSION
        self.scanned = 0  # captures scanned, for the summary

    # -- registry ----------------------------------------------------------------------------

    def register(self, secret: object, *, constant: bool = False) -> None:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if BEARER_SHAPE.fullmatch(secret):
                self.bearer.add(secret)
            elif constant:
                self.constants.add(secret)
            else:
                self.literals.add(secret)
                self.test_literals.add(secret)

    # -- captures ----------------------------------------------------------------------------

    def capture(self, where: str, text: str) -> None:
        if text:
            self.captures.append((where, text))  # list.append is atomic: threads may log

    def capture_url(self, where: str, url: str) -> None:
        decoded = unquote(url)
        self.capture(f"URL of {where}", url if decoded == url else f"{url}\n{decoded}")

    # -- scanning ----------------------------------------------------------------------------

    def _leaks(self, text: str, literals: Iterable[str]) -> Iterator[str]:
        if self.bearer and "rt" in text:
            for match in BEARER_SHAPE.finditer(text):
                if match.group() in self.bearer:
                    yield match.group()
        for secret in literals:
            if secret in text:
                yield secret

    def scan(self, captures: list[tuple[str, str]], literals: set[str]) -> list[Finding]:
        found: list[Finding] = []
        if not captures:
            return found
        joined = "\x00".join(text for _where, text in captures)
        suspects = set(self._leaks(joined, literals))
        if suspects:  # rare: find which captures hold them
            for where, text in captures:
                found.extend(Finding(self.test, where, s) for s in suspects if s in text)
        self.scanned += len(captures)
        return found

    def end_test(self) -> list[Finding]:
        """Scan the test's captures and forget them."""
        captures, self.captures = self.captures, []
        with self._lock:
            literals = self.constants | self.test_literals
            self.test_literals = set()
        found = self.scan(captures, literals)
        self.findings.extend(found)
        return found

    def scan_files(self) -> list[Finding]:
        found: list[Finding] = []
        literals = self.constants | self.literals
        self.test = SESSION
        for path in self.files:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            found.extend(self.scan([(f"live-server log {path.name}", text)], literals))
        self.findings.extend(found)
        return found


_scanner = Scanner()


def scanner() -> Scanner:
    return _scanner


def capture(where: str, text: str) -> None:
    """Something the app showed or wrote that tests cannot otherwise see (browser pages...)."""
    _scanner.capture(where, text)


def capture_url(where: str, url: str) -> None:
    _scanner.capture_url(where, url)


def watch_file(path: Path) -> None:
    """A live server's log: scanned when the session ends."""
    _scanner.files.append(path)


def register(secret: str) -> None:
    _scanner.register(secret)


# -- logs ------------------------------------------------------------------------------------------


class _LogFormatter(logging.Formatter):
    """The line a log shipper would keep: message with its arguments, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD_RECORD_FIELDS
        ]
        return f"{line} {' '.join(extras)}" if extras else line


class _LogWatch(logging.Handler):
    def __init__(self, watch: Scanner) -> None:
        super().__init__(logging.NOTSET)
        self.watch = watch
        self.setFormatter(_LogFormatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.watch.capture(
                f"log line of {record.name} ({record.levelname})", self.format(record)
            )
        except Exception:  # a record that cannot be formatted is not a leak
            self.handleError(record)


# -- HTTP ------------------------------------------------------------------------------------------


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _capture_exchange(client: httpx.Client | httpx.AsyncClient, response: httpx.Response) -> None:
    watch = _scanner
    upstream = isinstance(getattr(client, "_transport", None), httpx.MockTransport)
    for answer in (*response.history, response):
        request = answer.request
        label = f"{request.method} {request.url.copy_with(query=None)}"
        watch.capture_url(label, str(request.url))
        if upstream or _origin(request.url) in watch.upstreams:
            continue
        headers = "\n".join(f"{key}: {value}" for key, value in answer.headers.multi_items())
        watch.capture(f"response headers of {label} ({answer.status_code})", headers)
        if hasattr(answer, "_content"):  # read already; a stream is left to its reader
            body = answer.content.decode("utf-8", "replace")
            watch.capture(f"response body of {label} ({answer.status_code})", body)


def _patch_httpx(patch: pytest.MonkeyPatch) -> None:
    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            response = sync_send(self, request, **kwargs)
        except BaseException:
            _scanner.capture_url(f"{request.method} request", str(request.url))
            raise
        _capture_exchange(self, response)
        return response

    async def asend(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await async_send(self, request, **kwargs)
        except BaseException:
            _scanner.capture_url(f"{request.method} request", str(request.url))
            raise
        _capture_exchange(self, response)
        return response

    patch.setattr(httpx.Client, "send", send)
    patch.setattr(httpx.AsyncClient, "send", asend)


# -- the registry's sources ------------------------------------------------------------------------


def _registering(function: Callable[..., Any], secret_of: Callable[[Any], object]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        _scanner.register(secret_of(result))
        return result

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    wrapper.__doc__ = function.__doc__
    return wrapper


def _patch_sources(patch: pytest.MonkeyPatch) -> None:
    from retargeting.db import settings_store
    from retargeting.services import credentials
    from tests import factories
    from tests.fakes.graph_stand_in import GraphStandIn

    _scanner.register(factories.ACCESS_TOKEN, constant=True)
    for name in ("create_token", "create_api_key"):
        original = getattr(credentials, name)
        patch.setattr(credentials, name, _registering(original, lambda issued: issued.secret))

    write_pixel = settings_store.write_pixel

    def watched_write_pixel(conn: Any, cipher: Any, pixel: Any, now: float) -> None:
        _scanner.register(pixel.access_token)
        write_pixel(conn, cipher, pixel, now)

    patch.setattr(settings_store, "write_pixel", watched_write_pixel)

    start, stop, reset = GraphStandIn.start, GraphStandIn.stop, GraphStandIn.reset

    def harvest(stand_in: GraphStandIn) -> None:
        """The URLs the stand-in received (also from live servers' own processes)."""
        for request in stand_in.requests:
            _scanner.capture_url("a request to the Graph stand-in", request.url)

    def watched_start(self: GraphStandIn) -> GraphStandIn:
        started = start(self)
        _scanner.upstreams.add(self.url)
        return started

    def watched_stop(self: GraphStandIn) -> None:
        harvest(self)
        stop(self)

    def watched_reset(self: GraphStandIn) -> None:
        harvest(self)
        reset(self)

    patch.setattr(GraphStandIn, "start", watched_start)
    patch.setattr(GraphStandIn, "stop", watched_stop)
    patch.setattr(GraphStandIn, "reset", watched_reset)


# -- hooks -----------------------------------------------------------------------------------------

_patch = pytest.MonkeyPatch()
_handler = _LogWatch(_scanner)
_levels: list[tuple[logging.Logger, int]] = []


def _attach_handler() -> None:
    """Also after code under test replaced the root's handlers (the CLI's `serve` does)."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    _patch_httpx(_patch)
    _patch_sources(_patch)
    # What production logs (INFO and up) plus the app's own DEBUG lines; SQL echo stays off.
    for name, level in (("", logging.INFO), ("retargeting", logging.DEBUG)):
        logger = logging.getLogger(name)
        _levels.append((logger, logger.level))
        logger.setLevel(level)
    _attach_handler()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _scanner.end_test()  # whatever arrived between tests belongs to no test's secrets
    _scanner.test = item.nodeid
    _attach_handler()
    try:
        return (yield)
    finally:
        _scanner.end_test()
        _scanner.test = SESSION


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _scanner.end_test()
    _scanner.scan_files()
    logging.getLogger().removeHandler(_handler)
    for logger, level in reversed(_levels):
        logger.setLevel(level)
    _patch.undo()
    if _scanner.findings and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    findings = _scanner.findings
    if not findings:
        return
    terminalreporter.section("secret watch: credentials leaked", sep="=", red=True, bold=True)
    for finding in dict.fromkeys(findings):
        terminalreporter.line(str(finding), red=True)
    terminalreporter.line(
        f"{len(findings)} leak(s): an access token or API key reached a response, page, URL or "
        "log line (see tests/support/secret_watch.py)",
        red=True,
    )
