"""Airflow-only code: the DAG's notifier and the in-process runner behind `ofsted run`.

`ingest` never imports this package (nor Airflow), so it stays usable without them.
"""
