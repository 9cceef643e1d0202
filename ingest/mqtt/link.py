"""Connection bookkeeping and diagnostics shared by the MQTT source and publisher: :class:`Link`
carries what paho's network thread learns (connected, refused, failed) to the asyncio side and
turns a broker's refusal, an unreachable address or a TLS failure into one :class:`MqttError`
line naming the address."""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt.settings import MqttError, MqttSettings, tls_context

__all__ = ["FATAL_DISCONNECT", "Link", "connect_properties", "reason_name", "resolve"]

# CONNACK / DISCONNECT reason codes after which retrying cannot help.
FATAL_CONNECT = {"Bad user name or password", "Not authorized", "Client identifier not valid", "Banned",
                 "Unsupported protocol version", "Bad authentication method", "Malformed packet",
                 "Protocol error", "Topic Name invalid"}
FATAL_DISCONNECT = {"Session taken over", "Not authorized", "Bad user name or password"}


def _tls_problem(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the broker's certificate was not accepted ({exc.verify_message}); check ca= and that the "
                f"host name is in the certificate")
    return f"TLS handshake failed ({exc}); is this the broker's TLS port?"


def _refusal_hint(reason: str, settings: MqttSettings) -> str:
    if reason not in ("Not authorized", "Bad user name or password"):
        return ""
    if settings.username:
        return f" (check the user name {settings.username!r} and its password)"
    return " (the broker wants a user name and password: mqtt://USER:PASSWORD@HOST)"


def connect_properties(*, session_expiry_s: int, receive_maximum: int) -> Properties:
    """The MQTT 5 CONNECT properties: Session Expiry Interval (when not 0) and Receive Maximum."""
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    props.ReceiveMaximum = receive_maximum
    return props


def reason_name(rc: Any) -> str:
    """The name of a paho reason code ('Not authorized', …)."""
    return getattr(rc, "getName", lambda: str(rc))()


def resolve(fut: asyncio.Future | None) -> None:
    """Wake whoever awaits ``fut`` (on the loop's thread)."""
    if fut is not None and not fut.done():
        fut.set_result(None)


class Link:
    """Connection bookkeeping shared by the source and the publisher (paho thread -> asyncio)."""

    def __init__(self, settings: MqttSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None      # fatal: re-raised in the caller
        self.last_problem = "no answer yet"           # why the latest attempt failed (for timeouts)
        self.connected = threading.Event()
        self.generation = 0                           # bumped on every CONNACK (ack only current-connection mids)
        self.connects = 0
        self.disconnects = 0

    def fail(self, exc: BaseException, wake: Any) -> None:
        if self.error is None:
            self.error = exc
        self.wake(wake)

    def wake(self, callback: Any) -> None:
        """Run ``callback`` on the asyncio loop, from paho's thread (nothing if the loop is gone)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:                      # loop closed meanwhile
                pass

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    async def probe(self) -> None:
        """Fail at once, naming the address, when nothing listens there (paho would retry for ever)."""
        s = self.settings
        try:
            conn = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), min(5.0, s.connect_timeout_s))
        except (OSError, asyncio.TimeoutError) as exc:
            why = "timed out" if isinstance(exc, asyncio.TimeoutError) else \
                (os.strerror(exc.errno).lower() if exc.errno else str(exc))
            raise MqttError(f"cannot connect to {s.url}: {why}") from None
        conn[1].close()
        if s.tls:       # paho would retry a refused certificate until the timeout, saying only "unreachable"
            problem = await asyncio.to_thread(self.tls_problem)
            if problem:
                raise MqttError(f"cannot connect to {s.url}: {problem}")

    def tls_problem(self, timeout: float = 5.0) -> str | None:
        """What a TLS handshake with the broker says, or None when it succeeds or when nothing
        answers at all (not a TLS problem) -- blocking."""
        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout)
        except OSError:
            return None
        try:
            with sock, tls_context(s).wrap_socket(sock, server_hostname=s.host):
                return None
        except MqttError as exc:
            return str(exc)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            return _tls_problem(exc)
        except OSError as exc:
            return f"TLS handshake failed ({exc}); is this the broker's TLS port?"

    def refused(self, rc: Any, wake: Any) -> bool:
        """Whether a CONNACK (paho's thread) refused the connection; a refusal is recorded, and a
        reason no retry can mend ends the attempt."""
        if not rc.is_failure:
            return False
        reason = reason_name(rc)
        self.last_problem = f"the broker refused the connection: {reason}{_refusal_hint(reason, self.settings)}"
        if reason in FATAL_CONNECT:
            self.fail(MqttError(f"{self.settings.url}: {self.last_problem}"), wake)
        return True

    def up(self) -> int:
        """A connection was accepted: counted and signalled; returns how many so far."""
        self.connects += 1
        self.connected.set()
        return self.connects

    def connect_failed(self) -> None:
        """paho could not connect (its thread): keep the best explanation for the caller."""
        problem = self.tls_problem() if self.settings.tls else None
        self.last_problem = problem or "connection refused or unreachable"

    async def wait_connected(self, timeout: float, ready: threading.Event) -> None:
        """Wait for ``ready`` (CONNACK, or SUBACK for a subscriber); a fatal error or the timeout raises."""
        deadline = time.monotonic() + timeout
        while not ready.is_set():
            self.check()
            if time.monotonic() > deadline:
                raise MqttError(f"cannot connect to {self.settings.url} within {timeout:g} s: {self.last_problem}")
            await asyncio.sleep(0.02)
        self.check()

