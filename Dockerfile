# The Airflow image for docker-compose.yml: the official Airflow 3.3 image (Python 3.11) plus this
# project and exactly the locked production dependency set (requirements/production.lock: Postgres
# drivers, Celery provider with celery 5.6.3, s3fs for the batch store), the dbt manifest the DAG
# renders from (built here by `dbt parse`: target/ is not in the build context), and a /data tree
# owned by the image's user and group 0 (airflow-init hands the volume to AIRFLOW_UID:0). Nothing
# is mounted over /opt/ofsted in production.
FROM apache/airflow:3.3.2-python3.11

ENV DO_NOT_TRACK=1 \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

USER root
RUN mkdir -p /data/inbox /data/archive /data/runs /data/warehouse /data/report /data/alerts \
        /data/logs /data/external /opt/airflow/auth \
    && chown -R airflow:0 /data /opt/airflow/auth \
    && chmod -R g+rwX /data
USER airflow

# The locked dependencies first (cached layer), then the package itself in editable mode (so the
# development override, docker-compose.dev.yml, can mount the checkout's code over it).
COPY --chown=airflow:0 requirements/production.lock /opt/ofsted/requirements/production.lock
RUN pip install --no-cache-dir -r /opt/ofsted/requirements/production.lock
COPY --chown=airflow:0 pyproject.toml README.md /opt/ofsted/
COPY --chown=airflow:0 ingest /opt/ofsted/ingest
COPY --chown=airflow:0 expectations /opt/ofsted/expectations
COPY --chown=airflow:0 orchestration /opt/ofsted/orchestration
RUN pip install --no-cache-dir --no-deps -e /opt/ofsted

COPY --chown=airflow:0 dags /opt/ofsted/dags
COPY --chown=airflow:0 deploy /opt/ofsted/deploy
COPY --chown=airflow:0 dbt_project /opt/ofsted/dbt_project
WORKDIR /opt/ofsted
# The manifest the DAG's dbt tasks are rendered from (DAG parsing runs no dbt).
RUN cd dbt_project && OFSTED_WORK_WAREHOUSE=/data/warehouse/ofsted_work.duckdb \
    dbt parse --quiet --profiles-dir . --target-path target
# group 0 may write where a task writes (any AIRFLOW_UID runs with gid 0, as in the official image)
USER root
RUN chmod -R g+rwX /opt/ofsted/dbt_project
USER airflow
