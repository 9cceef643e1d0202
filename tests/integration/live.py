"""Helpers for tests that drive real servers: a free local port, a JSON GET (with an API
token), an API token made with ``ioc tokens add``, waiting for a condition, creating Kafka topics."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, token: str | None = None) -> Any:
    """GET ``url`` as JSON; with ``token``, as ``Authorization: Bearer <token>``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return json.loads(resp.read())


def add_token(auth_dir: Path | None, scope: str = "read", name: str = "test-probe",
              ioc: Sequence[str] = (sys.executable, "-m", "ioc.cli"), **run: Any) -> str:
    """A new API token of ``scope`` in the user store of ``auth_dir`` (``<data-dir>/auth``; None:
    the default one), made as an admin makes one: ``ioc tokens add`` (the secret is its last line)."""
    where = ["--data", str(auth_dir)] if auth_dir is not None else []
    out = subprocess.run([*ioc, "tokens", "add", name, "--scope", scope, *where], capture_output=True, text=True,
                         check=True, timeout=60, **run)
    return out.stdout.strip().splitlines()[-1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); a server not up yet
    (OSError) or a half-written answer (ValueError) counts as not yet."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def make_topics(bootstrap: str, *names_partitions: tuple[str, int]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, p, 1) for n, p in names_partitions])
    finally:
        await admin.close()


def ioc_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``python -m ioc.cli ARGS`` from the checkout (the password on standard input, as an admin
    types it); its standard output, or an AssertionError with its standard error."""
    out = subprocess.run([sys.executable, "-m", "ioc.cli", *args], cwd=Path(__file__).resolve().parents[2],
                         input=stdin, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout
