#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine, then run the whole suite.
# Used as-is by CI (.ci/run) and by developers: `bash scripts/test.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages for the integration tests, from Debian's archive; only where missing:
# a real browser, the real Mosquitto and its clients, kcat (Kafka's C client), docker-compose
# (to validate docker-compose.yml; no engine needed), Java 17 + Maven for Kafka's jars, PostgreSQL, and GDAL (ogrinfo).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)          # a real GIS client for the OGC API
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} missing and not root: the tests that need them will be skipped" >&2
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m pytest -q "$@"
