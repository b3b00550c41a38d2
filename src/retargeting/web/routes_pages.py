"""The superadmin page /platform/retargeting: server-rendered, and complete without JavaScript.

Each action is a plain form post that answers 303 back to the page with a one-shot message
(`flash`), or 422 with the page re-rendered and the error next to its field. The page's scripts
make the same actions instant by calling the JSON API (`routes_platform`) with the session's
CSRF header, and fetch `_organizations.html` alone for the instant search; both paths run the
same services, so they enforce the same rules.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retargeting.domain.pixel import OrgToggleRefused, PixelState
from retargeting.graph.client import Accepted
from retargeting.services import admin_page, org_retargeting, pixel_settings, test_event
from retargeting.web import deps, sessions, templating
from retargeting.web.flash import Flash, clear_flash, read_flash, set_flash

router = APIRouter(prefix="/platform/retargeting", include_in_schema=False)

PAGE_PATH = "/platform/retargeting"
API_PATH = "/api/v1/platform/retargeting"
MAX_FIELD = 10_000  # the longest field is an access token (1,000); the rest is a mistake
FIELD_LABELS = {
    "pixel_id": "Pixel ID",
    "access_token": "Access Token",
    "test_event_code": "Test Event Code",
}

FormField = Annotated[str, Form(max_length=MAX_FIELD)]


def _render_page(
    request: Request,
    runtime: deps.RuntimeDep,
    user_email: str,
    query: admin_page.OrgQuery,
    *,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = admin_page.gather(runtime.engine, runtime.cipher, runtime.snapshot.current, query)
    if form is None:  # as stored; the token is write-only and never a value
        form = {
            "pixel_id": page.pixel.pixel_id,
            "test_event_code": page.pixel.test_event_code,
            "enabled": page.pixel.enabled,
            "errors": {},
        }
    response = templating.render(
        request,
        "retargeting.html",
        {
            "csrf_token": sessions.csrf_token(request),
            "user_email": user_email,
            "page": page,
            "organizations": page.organizations,
            "pixel_active": page.pixel.state is PixelState.ACTIVE,
            "form": form,
            "flash": read_flash(request, runtime.cipher),
            "now": time.time(),
            "page_path": PAGE_PATH,
            "api_path": API_PATH,
        },
        status_code=status_code,
    )
    clear_flash(response, request)
    return response


def _back(request: Request, runtime: deps.RuntimeDep, flash: Flash, target: str) -> Response:
    """303 to the page (`target` is its query string and anchor), carrying the message."""
    response = sessions.redirect(f"{PAGE_PATH}{target}")
    set_flash(response, request, runtime.cipher, flash)
    return response


@router.get("")
def retargeting_page(
    request: Request, user: sessions.PageUserDep, runtime: deps.RuntimeDep
) -> HTMLResponse:
    query = admin_page.OrgQuery.from_params(request.query_params)
    return _render_page(request, runtime, user.email, query)


@router.get("/organizations")
def organizations_table(
    request: Request, user: sessions.PageUserDep, runtime: deps.RuntimeDep
) -> Response:
    """The table alone with `partial=1` (the instant search); otherwise the page at that query."""
    query = admin_page.OrgQuery.from_params(request.query_params)
    if request.query_params.get("partial") != "1":
        return sessions.redirect(f"{PAGE_PATH}{query.query_string()}#organizations")
    organizations, pixel_state = admin_page.org_table(runtime.engine, runtime.cipher, query)
    return templating.render(
        request,
        "_organizations.html",
        {
            "csrf_token": sessions.csrf_token(request),
            "organizations": organizations,
            "pixel_active": pixel_state is PixelState.ACTIVE,
            "page_path": PAGE_PATH,
            "api_path": API_PATH,
        },
    )


@router.post("/pixel")
def save_pixel(
    request: Request,
    user: sessions.PageUserDep,
    _csrf: sessions.CsrfFormDep,
    runtime: deps.RuntimeDep,
    pixel_id: FormField = "",
    access_token: FormField = "",
    test_event_code: FormField = "",
    enabled: FormField = "",
) -> Response:
    """Same rules as PUT /pixel; an empty Access Token keeps the stored one."""
    switched_on = enabled in ("on", "true", "1")  # a checked checkbox sends "on"
    update = pixel_settings.PixelUpdate(
        pixel_id=pixel_id,
        enabled=switched_on,
        test_event_code=test_event_code,
        access_token=access_token or None,
    )
    try:
        pixel_settings.update_pixel(
            runtime.engine, runtime.cipher, actor=user.email, update=update, now=time.time()
        )
    except pixel_settings.PixelUpdateRejected as exc:
        form = {
            "pixel_id": pixel_id,
            "test_event_code": test_event_code,
            "enabled": switched_on,
            "errors": {exc.field: f"{FIELD_LABELS.get(exc.field, exc.field)} {exc.message}."},
        }
        query = admin_page.OrgQuery()
        return _render_page(request, runtime, user.email, query, form=form, status_code=422)
    runtime.snapshot.refresh()
    return _back(request, runtime, Flash("success", "Settings saved", "pixel"), "#pixel")


@router.post("/organizations/{org_id}")
def toggle_organization(
    request: Request,
    org_id: deps.OrgIdPath,
    user: sessions.PageUserDep,
    _csrf: sessions.CsrfFormDep,
    runtime: deps.RuntimeDep,
    retargeting_enabled: FormField = "",
    return_query: FormField = "",
) -> Response:
    """Switch one organization; back to the same search, sort and page of the list."""
    params = dict(parse_qsl(return_query.removeprefix("?")))
    target = f"{admin_page.OrgQuery.from_params(params).query_string()}#organizations"
    name = admin_page.org_name(runtime.engine, org_id) or org_id
    if retargeting_enabled not in ("true", "false"):
        message = f"Could not update {name}: the form did not say whether to switch it on or off."
        return _back(request, runtime, Flash("error", message, "organizations"), target)
    enabled = retargeting_enabled == "true"
    try:
        org = org_retargeting.set_retargeting(
            runtime.engine,
            runtime.cipher,
            actor=user.email,
            org_id=org_id,
            enabled=enabled,
            now=time.time(),
        )
    except org_retargeting.OrganizationNotFound:
        message = f"Could not update {name}: this organization does not exist (any more)."
        return _back(request, runtime, Flash("error", message, "organizations"), target)
    except OrgToggleRefused as exc:
        flash = Flash("error", f"Could not update {name}: {exc}", "organizations")
        return _back(request, runtime, flash, target)
    verb = "Enabled" if org.retargeting_enabled else "Disabled"
    flash = Flash("success", f"{verb} retargeting for {org.name}", "organizations")
    return _back(request, runtime, flash, target)


def _test_event_flash(result: test_event.TestEventResult) -> Flash:
    answer = result.answer
    if isinstance(answer, Accepted):
        details = [f"Test event code: {result.test_event_code}"]
        if answer.fbtrace_id:
            details.append(f"fbtrace_id: {answer.fbtrace_id}")
        details += answer.messages
        received = templating.plural(answer.events_received, "event")
        return Flash("success", f"Meta received {received}.", "test-event", tuple(details))
    details = [f"Test event code: {result.test_event_code}"]
    if answer.code is not None:
        codes = f"Code {answer.code}"
        if answer.error_subcode is not None:
            codes += f", subcode {answer.error_subcode}"
        details.append(codes)
    if answer.fbtrace_id:
        details.append(f"fbtrace_id: {answer.fbtrace_id}")
    if answer.code is None and answer.http_status is None:  # a timeout or refused connection
        message = f"Could not reach Meta: {answer.message}"
    else:
        message = f"Meta refused the test event: {answer.error_user_msg or answer.message}"
    return Flash("error", message, "test-event", tuple(details))


@router.post("/test-event")
async def send_test_event(
    request: Request,
    user: sessions.PageUserDep,
    _csrf: sessions.CsrfFormDep,
    runtime: deps.RuntimeDep,
) -> Response:
    """Send one test widget view with the stored test event code; Meta's answer comes back."""
    try:
        result = await test_event.send(
            runtime.engine,
            runtime.cipher,
            runtime.graph,
            actor=user.email,
            test_event_code=None,
            now=time.time(),
        )
    except test_event.TestEventRefused as exc:
        return _back(request, runtime, Flash("error", str(exc), "test-event"), "#test-event")
    return _back(request, runtime, _test_event_flash(result), "#test-event")


# A form posted after the session expired comes back here via /login?next=...: a GET.
@router.get("/pixel")
@router.get("/test-event")
def back_to_page(user: sessions.PageUserDep) -> RedirectResponse:
    return sessions.redirect(PAGE_PATH)


@router.get("/organizations/{org_id}")
def back_to_organizations(org_id: str, user: sessions.PageUserDep) -> RedirectResponse:
    return sessions.redirect(f"{PAGE_PATH}#organizations")
