"""What makes the review app safe to run: loopback unless a token is set, the token on every request when it is,
no foreign Host (DNS rebinding) on loopback, a CSRF token and a same-origin check on every state change, and
headers that let the browser run only the app's own script (records are untrusted text)."""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_COOKIE = "review_token"
TOKEN_PARAMETER = "token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SECURITY_HEADERS = {
    # No inline script or style anywhere: a record holding <script> could not run even if it escaped escaping.
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser posts `Origin: null`, which the CSRF check refuses.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class ExposureError(ValueError):
    """Binding beyond loopback without a token."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token: anyone who can reach the port could write decisions."""
    if not is_loopback(host) and not token:
        raise ExposureError(
            f"--host {host} makes the review app reachable from other machines: set a token with --token "
            "(or ANYTASKTUNE_REVIEW_TOKEN); only 127.0.0.1 may go without one"
        )


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Guard:
    """ASGI middleware in front of every route: Host, token and the security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = self._refusal(request)
        if refused is not None:
            await _with_headers(refused)(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if self.token is None:
            # Loopback only: a page elsewhere that resolves its own name to 127.0.0.1 must not reach the app.
            if not is_loopback(request.url.hostname or ""):
                return PlainTextResponse("unexpected Host header: this review app answers on loopback only", 400)
            return None
        if same_token(request.query_params.get(TOKEN_PARAMETER), self.token):
            # The token in the link is traded for a cookie, and dropped from the address bar and history.
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAMETER]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
            return response
        bearer = request.headers.get("authorization", "")
        if same_token(request.cookies.get(TOKEN_COOKIE), self.token) or same_token(
            bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None, self.token
        ):
            return None
        return PlainTextResponse("this review app needs its token: open the link it printed when it started", 401)


def same_origin(request: Request) -> bool:
    """A state change must come from the app's own pages: Origin (or Referer) names this host, or neither is sent
    (a client that is not a browser; the CSRF token is still required). An opaque `null` origin is refused."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    where = urlsplit(source)
    return f"{where.scheme}://{where.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


def _with_headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response
