# The Airflow image for docker-compose.yml: the official Airflow 3.3 image (Python 3.11, with the
# Celery and Postgres providers) plus this project's package and its pinned dependencies.
FROM apache/airflow:3.3.2-python3.11

ENV DO_NOT_TRACK=1 \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# Install the dependencies from pyproject.toml first (cached layer), then the package itself in
# editable mode so the mounted checkout at /opt/ofsted is what runs.
COPY --chown=airflow:0 pyproject.toml README.md /opt/ofsted/
COPY --chown=airflow:0 ingest /opt/ofsted/ingest
COPY --chown=airflow:0 expectations /opt/ofsted/expectations
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -e /opt/ofsted

COPY --chown=airflow:0 dags /opt/ofsted/dags
COPY --chown=airflow:0 dbt_project /opt/ofsted/dbt_project
WORKDIR /opt/ofsted
