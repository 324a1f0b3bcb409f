# One image for every process: web, worker, beat, flower and the migration job differ only in their command.
# Two stages: dependencies are installed into a virtualenv in the first; the second copies only that and the code.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
COPY requirements.txt /tmp/requirements.txt
RUN /venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH
# A fixed uid so Kubernetes' runAsNonRoot/runAsUser and file ownership agree.
RUN groupadd --system --gid 10001 shop && useradd --system --uid 10001 --gid shop --home-dir /app --no-create-home shop
# Backups (docs/backups.md): pgBackRest and PostgreSQL 15's server programs (pg_ctl for restores and drills),
# for the worker that takes them. `postgres` gets uid/gid 999 as in the postgres image, so that worker can run
# as the owner of the shared data folder; no cluster is created here.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pgbackrest postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 0750 /var/lib/pgbackrest /var/lib/postgresql
WORKDIR /app
COPY --from=build /venv /venv
# The code belongs to root and cannot be changed by the app; only var/ (mail, metrics, beat state) is writable,
# by the group too: the worker runs as postgres with the shop group added (docker-compose.yml).
COPY . .
RUN mkdir -p var/mail && chown -R shop:shop var && chmod -R g+w var
USER 10001:10001

EXPOSE 8000 9808 5555
# The web process (the default command) answers /healthz; other processes get their own checks
# in docker-compose.yml and Kubernetes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
