# syntax=docker/dockerfile:1
# Involvement Companion: slim, non-root, SQLite data on a volume, health check on /healthz.
# The base image is pinned by digest (both stages); refresh it deliberately with
# `docker buildx imagetools inspect python:3.11-slim` and update both lines.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY prompts ./prompts
# The same install step CI uses (.ci/run), without the test and lint extras.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/companion.db \
    COMPANION_DATA_DIR=/data
RUN useradd --create-home --uid 10001 companion \
    && mkdir -p /data && chown companion:companion /data
COPY --from=build /opt/venv /opt/venv
USER 10001
WORKDIR /home/companion
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["companion"]
# /healthz answers on --health-port in polling and webhook mode alike; keep it when adding
# --webhook URL --listen 0.0.0.0:8443.
CMD ["run", "--health-port", "8080"]
