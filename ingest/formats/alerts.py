"""The alert JSON of the alert topics (``ioc.alerts``): one alert as one object, times in
ISO 8601 UTC and reasons as names."""
from __future__ import annotations

import json
import math

from ingest.formats.common import iso_utc
from processing.alerts import Alert
from processing.reasons import describe

__all__ = ["encode_alert"]


def encode_alert(alert: Alert) -> bytes:
    """An alert as a JSON object (times in ISO 8601 UTC, reasons as names) for the alert topics."""
    def when(t: float | None) -> str | None:
        return None if t is None or not math.isfinite(t) else iso_utc(t)

    obj = {
        "id": alert.id, "sensor": alert.sensor_id, "kind": alert.kind, "severity": alert.severity,
        "state": alert.state, "opened_at": when(alert.opened_at), "last_at": when(alert.last_at),
        "cleared_at": when(alert.cleared_at), "peak_score": round(float(alert.peak_score), 4),
        "last_value": float(alert.last_value) if math.isfinite(alert.last_value) else None,
        "reasons": describe(int(alert.reasons)), "readings": alert.readings, "occurrences": alert.occurrences,
        "acknowledged_by": alert.acknowledged_by, "resolved_by": alert.resolved_by, "rev": alert.rev,
    }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
