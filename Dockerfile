# syntax=docker/dockerfile:1
# citrix-cloud-exporter container image.
#
#   docker build -t citrix-cloud-exporter .
#   docker run --rm -p 9876:9876 citrix-cloud-exporter --demo
#
# Stage 1 builds the wheel and installs it with its dependencies into /opt/venv; stage 2 is a
# clean slim image that gets only that venv and the default config: no compiler, no pip cache,
# no sources or tests. Both stages must use the same base image (the venv's interpreter is the
# base image's /usr/local/bin/python3.11). tests/deploy/test_deploy_container.py replays the COPY and
# RUN lines of this file, so keep them plain.

FROM python:3.11.14-slim-trixie AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
# The git commit for citrix_exporter_build_info (the build context has no .git):
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" .
ARG REVISION=unknown
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY exporter/ exporter/
RUN CITRIX_EXPORTER_REVISION="${REVISION}" pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .
RUN python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir /wheels/*.whl

FROM python:3.11.14-slim-trixie
ARG VERSION=0.1.0
ARG SOURCE_URL=https://github.com/citrix-cloud-exporter/citrix-cloud-exporter
LABEL org.opencontainers.image.title="citrix-cloud-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Citrix Cloud licensing and DaaS data" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"
# CREDENTIALS_DIRECTORY is where the config's client_secret_file paths point: the name systemd
# uses for its credentials, here the directory where Docker/Compose mount secrets.
ENV PATH="/opt/venv/bin:${PATH}" \
    CREDENTIALS_DIRECTORY=/run/secrets \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
# Default config: one customer from the env CITRIX_CUSTOMER_ID and CITRIX_CLIENT_ID and the
# secret file /run/secrets/client_secret. Mount your own config over it for anything else.
COPY examples/config.yml /etc/citrix-cloud-exporter/config.yml
# A fixed numeric UID/GID (no passwd entry needed), so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 9876
# Slim images have no curl; urlopen raises (exit 1) on anything but a 2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:9876/healthz'), timeout=4)"]
ENTRYPOINT ["citrix-cloud-exporter", "--config.file=/etc/citrix-cloud-exporter/config.yml"]
