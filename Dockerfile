# The gateway alone, as docker-compose.yml builds it (beside PostgreSQL and Redis).
# It reads its settings from the environment only: `gateway settings` lists them all.
FROM python:3.11-slim

# The gateway keeps its keys (and its SQLite database, when no other is set) in
# $XDG_STATE_HOME/safeguarding-gateway: here /var/lib/safeguarding-gateway.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XDG_STATE_HOME=/var/lib

# A user of its own (a fixed number, so an orchestrator can check it is not root), no login;
# its folders 0700, as the gateway makes them itself. A volume mounted on an empty folder of
# the image takes the folder's owner and mode.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home \
      --home-dir /var/lib/safeguarding-gateway --shell /usr/sbin/nologin gateway \
 && install -d -o gateway -g gateway -m 0700 \
      /var/lib/safeguarding-gateway /var/lib/safeguarding-gateway/keys

# The package only (policies/ because gateway/policies links to it); the wheel carries the
# default policy, migrations, templates and static files.
WORKDIR /build
COPY pyproject.toml ./
COPY policies ./policies
COPY gateway ./gateway
RUN pip install . && cd / && rm -rf /build

USER 10001:10001
WORKDIR /var/lib/safeguarding-gateway
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# Every interface inside the container; publish it behind a TLS-terminating proxy.
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
