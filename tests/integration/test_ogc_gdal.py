"""The OGC API - Features of a running ``ioc run``, read by a real GIS client: GDAL's OAPIF driver.

``ogrinfo OAPIF:http://127.0.0.1:PORT/ogc/`` lists every collection; ``ogr2ogr`` copies every
collection, page by page, into a GeoPackage; the GeoPackage (an SQLite file) then holds as
many features as the API says it matched, with the same identifiers and properties.  GDAL
signs in with a read token (``GDAL_HTTP_HEADER_FILE``), as QGIS or the provincial portal would.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from live import ioc_cli as _ioc
from live import free_port, wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="needs GDAL (apt-get install gdal-bin)")]

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = ["sensors", "alerts", "wards", "water", "roads", "flood_zones", "planning_zones"]


def _gdal(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


@pytest.fixture
def served(tmp_path):
    data = tmp_path / "data"
    _ioc("users", "add", "gis", "--role", "viewer", "--data", str(data / "auth"), stdin="gis reader password 1\n")
    token = _ioc("tokens", "add", "gis", "--scope", "read", "--data", str(data / "auth")).strip().splitlines()[-1]
    port = free_port()
    log = tmp_path / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "ioc.cli", "run", "--port", str(port), "--speed", "1",
                             "--anomaly-rate", "4", "--preroll-hours", "3", "--seed", "3", "--data-dir", str(data)],
                            cwd=REPO, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and requests.get(url + "/api/health", timeout=2).json()["status"] == "ok",
                 120, "ioc run to go live")
        yield url, token
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_gdal_lists_reads_and_copies_every_collection(served, tmp_path):
    url, token = served
    headers = tmp_path / "headers.txt"
    headers.write_text(f"Authorization: Bearer {token}\n")
    env = {**os.environ, "GDAL_HTTP_HEADER_FILE": str(headers), "CPL_DEBUG": "OFF"}
    source = f"OAPIF:{url}/ogc/"
    listing = _gdal("ogrinfo", "-ro", "-q", source, env=env)
    assert [line.split(":", 1)[1].split("(")[0].strip() for line in listing.splitlines() if ":" in line] == COLLECTIONS

    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"

    def matched(cid: str) -> tuple[int, list]:
        body = api.get(f"{url}/ogc/collections/{cid}/items", params={"limit": 10000}, timeout=10).json()
        return body["numberMatched"], body["features"]

    before = {c: matched(c) for c in COLLECTIONS}
    import geojson

    for c in COLLECTIONS:                        # every item is valid GeoJSON (RFC 7946), by an independent check
        page = api.get(f"{url}/ogc/collections/{c}/items", params={"limit": 10000}, timeout=10).text
        parsed = geojson.loads(page)
        assert parsed.is_valid, (c, parsed.errors())
    gpkg = tmp_path / "city.gpkg"
    _gdal("ogr2ogr", "-f", "GPKG", str(gpkg), source, env=env)
    after = {c: matched(c) for c in COLLECTIONS}
    db = sqlite3.connect(gpkg)
    try:
        tables = {r[0] for r in db.execute("SELECT table_name FROM gpkg_contents")}
        assert tables == set(COLLECTIONS)
        for c in COLLECTIONS:
            n = db.execute(f'SELECT COUNT(*) FROM "{c}"').fetchone()[0]
            assert n in (before[c][0], after[c][0]), (c, n, before[c][0], after[c][0])
            assert n > 0 or c == "alerts", c
        # the sensors: the same ids, names and units as the API (paged by GDAL: more than one page)
        assert before["sensors"][0] > 100
        cols = [r[1] for r in db.execute('PRAGMA table_info("sensors")')]
        assert {"id", "name", "unit", "status", "last_value", "score"} <= set(cols), cols
        rows = {r[0]: r[1:] for r in db.execute('SELECT id, name, unit, ward FROM "sensors"')}
        api_rows = {f["id"]: (f["properties"]["name"], f["properties"]["unit"], f["properties"]["ward"])
                    for f in after["sensors"][1]}
        assert rows == api_rows
        # a layer's properties, Vietnamese text included
        roads = {r[0] for r in db.execute('SELECT name FROM "roads"')}
        assert "Quốc lộ 17" in roads
        wards = {r[0] for r in db.execute('SELECT name FROM "wards"')}
        assert {"Ngô Quyền", "Song Mai"} <= wards
    finally:
        db.close()
    # GDAL reads each feature: the sensors layer in full, with geometry
    full = _gdal("ogrinfo", "-ro", "-al", "-q", source, "sensors", env=env)
    assert full.count("POINT (") == before["sensors"][0]
