"""The control room's HTTP hardening: security headers, a request-size limit, JSON errors.

* **Headers** on every response: a Content-Security-Policy that Dash works with (scripts
  only from the server itself plus the hashes of Dash's own inline scripts, no eval, no
  framing, no plugins, connections only back to the server), ``X-Frame-Options: DENY``,
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``.  Styles may be
  inline (Plotly writes ``<style>`` elements); data is never turned into markup by the
  dashboard, so that does not open a path for a payload's strings.
* **Request size**: a body over ``max_body_bytes`` is refused with 413 before it is read.
* **Errors** under ``/api/`` (an unknown API path is a 404, not the page) and ``/metrics``,
  and for every 413, are JSON
  ``{"error": "..."}`` with the proper status (400, 401, 403, 404, 405, 413, 500); an
  unexpected error is logged here with its traceback and answered with one line, never
  the traceback.
"""
from __future__ import annotations

import logging

from dash import Dash
from flask import Flask, Response, abort, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

__all__ = ["MAX_BODY_BYTES", "content_security_policy", "harden"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000      # a callback's request is a few kB; an alert comment at most 500 characters


def content_security_policy(script_hashes: list[str]) -> str:
    return "; ".join((
        "default-src 'self'",
        "script-src 'self' " + " ".join(script_hashes),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def _wants_json() -> bool:
    path = request.path
    return path.startswith("/api/") or path == "/metrics" or path.startswith("/_dash-")


def harden(app: Dash, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Add the headers, the size limit and the JSON errors to ``app``'s Flask server."""
    server: Flask = app.server
    server.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    policy: list[str] = []          # computed at the first response: Dash knows its scripts by then

    @server.before_request
    def _api_paths_only() -> None:
        # Dash answers every path with its page (client-side routing); an API path nobody serves is a 404
        if request.path.startswith("/api/") and request.blueprint != "ioc_api" and request.routing_exception is None:
            abort(404, description=f"no API route {request.path}")

    @server.after_request
    def _headers(resp: Response) -> Response:
        if not policy:
            policy.append(content_security_policy(app.csp_hashes()))
        resp.headers.setdefault("Content-Security-Policy", policy[0])
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        resp.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.path.startswith("/api/"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @server.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if not (_wants_json() or exc.code == 413):
            return exc                                  # an HTML page's own error page
        what = {413: f"the request body is over {max_body_bytes:,} bytes"}.get(exc.code or 0, exc.description)
        resp = jsonify({"error": what})
        resp.status_code = exc.code or 500
        return resp

    @server.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response | HTTPException:
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        log.exception("%s %s failed", request.method, request.path)
        if not _wants_json():
            return InternalServerError()
        resp = jsonify({"error": "internal error; the server log has the details"})
        resp.status_code = 500
        return resp
