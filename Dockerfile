# The one image of sf_lakehouse: the gRPC code server (the default command), the daemon, the
# webserver and the task of every run (README "In production").
#   docker build --platform linux/amd64 -t <account>.dkr.ecr.<region>.amazonaws.com/sf-lakehouse:<tag> .
# sf_lakehouse_tests/test_image.py replays these instructions without Docker (a clean virtual
# environment outside the repository, the same commands): keep every RUN a plain shell command.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    VIRTUAL_ENV=/opt/sf-lakehouse \
    SF_LAKEHOUSE_PROJECT_DIR=/app \
    SF_LAKEHOUSE_HOME=/home/sf/lakehouse \
    DAGSTER_HOME=/home/sf/dagster
ENV PATH=$VIRTUAL_ENV/bin:$PATH

# The non-root user every process runs as.
RUN groupadd --system --gid 10001 sf && useradd --system --uid 10001 --gid sf --create-home --home-dir /home/sf sf

WORKDIR /app
# The exact pins of requirements.lock; a non-editable install (the package, no sources left).
COPY requirements.lock pyproject.toml setup.cfg README.md ./
COPY sf_lakehouse ./sf_lakehouse
RUN python -m venv "$VIRTUAL_ENV" && "$VIRTUAL_ENV/bin/pip" install -c requirements.lock . && rm -rf sf_lakehouse build *.egg-info

# What the installed package reads at run time (SF_LAKEHOUSE_PROJECT_DIR): the environments,
# the object specs and the dbt project, whose target/ and logs/ dbt writes as the user.
COPY --chown=sf:sf config ./config
COPY --chown=sf:sf dbt_project ./dbt_project
USER sf
# The dbt manifest dagster-dbt reads, parsed once here; the user's Dagster and lakehouse homes.
RUN cd dbt_project && dbt parse --quiet --profiles-dir . --target local && rm -rf logs && mkdir -p "$DAGSTER_HOME" "$SF_LAKEHOUSE_HOME"

EXPOSE 3000 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "sf_lakehouse.definitions", "--location-name", "sf_lakehouse"]
