"""Sign-in for the control room and its API: who asks, on every request, and whether they may.

* ``GET /login`` is the sign-in form (rendered here, every string escaped, no script);
  ``POST /login`` checks the name and password (:meth:`ioc.auth.store.AuthStore.sign_in`:
  lock-out, one message for a wrong name or password), then sets two cookies:
  ``ioc_session`` (HttpOnly, SameSite=Strict, Secure over HTTPS) and ``_csrf_token``
  (SameSite=Strict, readable by the page: Dash's renderer sends it back as the
  ``X-CSRFToken`` header of every callback).  ``POST /logout`` ends the session.
* Every other request is resolved to a :class:`~processing.access.Principal`:
  ``Authorization: Bearer ioc_…`` (an API token, :mod:`ioc.auth.store`), else the session
  cookie.  Open without either: ``/login``, Dash's static files, and ``/api/health`` and
  ``/metrics`` from loopback (``loopback_open``).  Without a principal a page is
  redirected to ``/login``; the API, the OGC API (``/ogc``) and the Dash callbacks answer 401 JSON.
* Every state change (POST, PUT, PATCH, DELETE but ``/login``) made with a session must
  carry its session's CSRF token (header ``X-CSRFToken`` or form field ``csrf``) and, when
  the browser names one, come from this server's own origin; else 403.  Token requests
  carry no cookie, so they need no CSRF token.
* What a principal may do is :func:`processing.access.check`, asked by the route or the
  callback that changes state (:func:`principal` gives it the asker, :func:`require`
  checks); an :class:`~processing.errors.AccessError` becomes 403 JSON,
  :class:`~processing.errors.NotSignedIn` 401 JSON.
* When a session ends (idle, maximum age, password changed, account disabled) the page's
  next refresh gets 401 and ``assets/session.js`` takes the screen to ``/login``: a wall that
  silently stopped updating would look live while blind.
* Sign-ins and refusals are logged with the name and address (never the password).
"""
from __future__ import annotations

import html
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote, urlsplit

from dash import Dash
from flask import Flask, Response, g, has_request_context, jsonify, redirect, request

from ioc.auth.store import AuthStore, Session
from processing.access import Principal, check
from processing.errors import AccessError, NotSignedIn

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "Asker", "asker", "has_asker", "install_signin", "principal", "require", "source_address"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "ioc_session"
CSRF_COOKIE = "_csrf_token"          # the name Dash's renderer reads (csrf_token_name)
CSRF_HEADER = "X-CSRFToken"          # the header it sends (csrf_header_name)
_STATIC = ("/assets/", "/_dash-component-suites/", "/_favicon.ico", "/favicon.ico")
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Asker:
    """Who made the request being served: the principal, their session (None for a token)
    and the source address, as recorded in the audit log."""

    who: Principal
    session: Session | None
    source: str


def source_address() -> str:
    """The peer address of the request being served (no proxy header is trusted)."""
    return request.remote_addr or ""


def has_asker() -> bool:
    """Whether the request being served (if any) was resolved to a principal."""
    return has_request_context() and g.get("ioc_asker") is not None


def asker() -> Asker:
    """Who made the request being served (:class:`NotSignedIn` if nobody signed in)."""
    found: Asker | None = g.get("ioc_asker")
    if found is None:
        raise NotSignedIn("sign in first")
    return found


def principal() -> Principal:
    """The signed-in user or token of the request being served (:class:`NotSignedIn` if none)."""
    return asker().who


def require(action: str, team: str | None = None) -> Principal:
    """The asker, if :func:`processing.access.check` lets them take ``action`` (on ``team``'s alert)."""
    who = principal()
    check(who, action, team)
    return who


def _loopback() -> bool:
    try:
        return ipaddress.ip_address((request.remote_addr or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _same_origin() -> bool:
    """False when the browser names another site as the request's origin.  (Under the page's
    ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` for its own POSTs, and a
    script or curl sends none: the CSRF token and SameSite cookies are the guard there.)"""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.host


def _login_page(message: str = "", status: int = 200, next_url: str = "/") -> Response:
    esc = html.escape
    note = f'<p class="err" role="alert">{esc(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Đăng nhập — City IOC</title>
<style>
body{{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#0b1220;
color:#e6edf7;font:16px/1.4 system-ui,sans-serif}}
form{{background:#111a2b;padding:2rem 2.2rem;border-radius:10px;width:20rem;box-shadow:0 8px 30px #0008}}
h1{{font-size:1.15rem;margin:0 0 1.2rem}} label{{display:block;margin:.8rem 0 .3rem;color:#9fb0c8}}
input{{width:100%;box-sizing:border-box;padding:.55rem .6rem;border-radius:6px;border:1px solid #2a3a55;
background:#0b1220;color:#e6edf7;font-size:1rem}}
button{{margin-top:1.3rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#2f6fed;color:#fff;
font-size:1rem;cursor:pointer}} .err{{color:#ff8a80;margin:.2rem 0 0}}
</style></head><body>
<form method="post" action="/login" id="login-form">
<h1>Trung tâm Điều hành Thông minh<br><small>Intelligent Operations Center</small></h1>
{note}
<label for="login-name">Tên đăng nhập / User name</label>
<input id="login-name" name="name" autocomplete="username" required maxlength="64" autofocus>
<label for="login-password">Mật khẩu / Password</label>
<input id="login-password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<input type="hidden" name="next" value="{esc(next_url)}">
<button type="submit" id="login-submit">Đăng nhập / Sign in</button>
</form></body></html>"""
    return Response(body, status=status, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _safe_next(target: str | None) -> str:
    """Only a path of this server (no scheme, no host, no ``//``) is followed after sign-in."""
    target = target or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def install_signin(app: Dash, store: AuthStore, *, clock: Callable[[], float] = time.time,
                   loopback_open: tuple[str, ...] = ("/api/health", "/metrics"),
                   secure_cookies: bool | None = None) -> None:
    """Require a signed-in user or an API token on ``app``'s server (see the module docstring).

    ``secure_cookies``: mark the cookies Secure (default: when the request came over HTTPS)."""
    server: Flask = app.server

    def json_error(status: int, message: str) -> Response:
        resp = jsonify({"error": message})
        resp.status_code = status
        return resp

    def wants_page() -> bool:
        return request.method == "GET" and not (request.path.startswith(("/api/", "/ogc", "/_dash-"))
                                                or request.path == "/metrics")

    def secure() -> bool:
        return request.is_secure if secure_cookies is None else secure_cookies

    @server.before_request
    def _who_asks() -> Response | None:
        path = request.path
        if path == "/login" or path.startswith(_STATIC):
            return None
        auth = request.headers.get("Authorization", "")
        try:
            if auth:
                scheme, _, value = auth.partition(" ")
                if scheme.lower() != "bearer":
                    raise NotSignedIn("use 'Authorization: Bearer <token>'")
                g.ioc_asker = Asker(store.token(value.strip()).principal, None, source_address())
            elif request.cookies.get(SESSION_COOKIE):
                session = store.session(request.cookies.get(SESSION_COOKIE), clock())
                g.ioc_asker = Asker(session.user.principal, session, source_address())
            else:
                raise NotSignedIn("sign in first (or send 'Authorization: Bearer <token>')")
        except NotSignedIn as exc:
            if path in loopback_open and request.method == "GET" and _loopback():
                return None                 # local monitoring, whatever stale cookie it may carry
            if wants_page():
                target = request.full_path.rstrip("?")
                return redirect("/login" if target == "/" else f"/login?next={quote(target, safe='')}")
            return json_error(401, str(exc))
        found: Asker = g.ioc_asker
        if request.method in _CHANGES and found.session is not None:
            sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf")
            if not _same_origin():
                return json_error(403, "refused: the request did not come from this control room's own page")
            if not AuthStore.csrf_ok(found.session, sent):
                return json_error(403, "refused: the CSRF token is missing or wrong; reload the page")
        return None

    @server.get("/login")
    def _login_form() -> Response:
        return _login_page(next_url=_safe_next(request.args.get("next")))

    @server.post("/login")
    def _login() -> Response:
        if not _same_origin():
            return _login_page("Yêu cầu không đến từ trang này / the request did not come from this page", 403)
        name, password = request.form.get("name", "").strip(), request.form.get("password", "")
        next_url = _safe_next(request.form.get("next"))
        try:
            sid, session = store.sign_in(name, password, clock(), source_address())
        except NotSignedIn as exc:
            log.warning("sign-in refused for %r from %s: %s", name[:64], source_address(), exc)
            return _login_page(str(exc), 401, next_url)
        log.info("%s %r signed in from %s", session.user.role, session.user.name, source_address())
        resp = redirect(next_url, code=303)
        resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Strict", secure=secure(), path="/")
        resp.set_cookie(CSRF_COOKIE, session.csrf, httponly=False, samesite="Strict", secure=secure(), path="/")
        return resp

    @server.post("/logout")
    def _logout() -> Response:
        store.sign_out(request.cookies.get(SESSION_COOKIE))
        resp = redirect("/login", code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        resp.delete_cookie(CSRF_COOKIE, path="/")
        return resp

    @server.errorhandler(AccessError)
    def _refused(exc: AccessError) -> Response:
        return json_error(403, str(exc))

    @server.errorhandler(NotSignedIn)
    def _not_signed_in(exc: NotSignedIn) -> Response:
        return json_error(401, str(exc))
