# City IOC: the `ioc` command (pipeline, dashboard, simulators, bridge) in one image.
# Used by docker-compose.yml; on its own:
#   docker build -t city-ioc . && docker run --rm -p 127.0.0.1:8050:8050 city-ioc ioc run --host 0.0.0.0
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Metadata first, then the packages: a code change does not redo the dependency layer
# any more than it must.
COPY pyproject.toml README.md ./
COPY processing ./processing
COPY ingest ./ingest
COPY simulators ./simulators
COPY dashboard ./dashboard
COPY ioc ./ioc
COPY config ./config
COPY deploy ./deploy
# The wheel carries the city (config/) and the broker templates (deploy/) as package data,
# so the installed `ioc` needs nothing from /app.
RUN pip install .[cluster] && rm -rf /app/build

# The data folder (alert store, core checkpoints): a volume in docker-compose.yml, so a
# redeploy keeps the alerts and warm-starts the anomaly core instead of relearning.
ENV IOC_DATA_DIR=/data
RUN useradd --create-home --uid 10001 ioc && mkdir -p /data && chown ioc /data
USER ioc
WORKDIR /home/ioc

EXPOSE 8050
CMD ["ioc", "run", "--host", "0.0.0.0", "--source", "kafka://kafka:9092"]
