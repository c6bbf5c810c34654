# syntax=docker/dockerfile:1
# One build for the Python services (and the simulated fleet); each is a target (`docker build --target substation .`).
# The commands here are the ones docker-compose.yml and `make up` run: tests/deployment/test_topology.py checks it.

FROM python:3.11.10-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The runtime's locked dependencies, exported from uv.lock (`make lock`): pinned and hashed.
COPY requirements.txt .
# A substation's sessions live in /data: a named volume takes this folder's owner when first mounted.
RUN pip install --no-cache-dir --require-hashes -r requirements.txt \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin grid \
    && mkdir /data && chown 10001:10001 /data
COPY grid_common/ grid_common/
# Code stays owned by root: the service user can read it, never change it.
USER 10001:10001

FROM base AS substation
COPY substation_service/ substation_service/
EXPOSE 5000
CMD ["gunicorn", "--config", "python:grid_common.gunicorn_conf", "substation_service.wsgi:app"]

FROM base AS balancer
COPY load_balancer/ load_balancer/
EXPOSE 7000
CMD ["gunicorn", "--config", "python:grid_common.gunicorn_conf", "load_balancer.wsgi:app"]

FROM base AS gateway
COPY charge_request_service/ charge_request_service/
EXPOSE 6000
CMD ["gunicorn", "--config", "python:grid_common.gunicorn_conf", "charge_request_service.wsgi:app"]

FROM base AS ocpp
COPY ocpp_service/ ocpp_service/
EXPOSE 9000
CMD ["python", "-m", "ocpp_service"]

FROM base AS fleet
COPY load_tester/__init__.py load_tester/
COPY load_tester/fleet/ load_tester/fleet/
EXPOSE 9100
# The default fleet: three chargers per substation of the default registry, a new car after each one leaves.
CMD ["python", "-m", "load_tester.fleet", "--duration", "0", "--cycle", "--time-scale", "360", "--meter-interval", "5", "--progress", "60", "--ids", "substation1-fleet1,substation1-fleet2,substation1-fleet3,substation2-fleet1,substation2-fleet2,substation2-fleet3,substation3-fleet1,substation3-fleet2,substation3-fleet3"]
