"""Helpers for tests that drive real servers: a free local port, a JSON GET, waiting for a
condition, creating Kafka topics."""
from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import Any, Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


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
