"""The night (its steps, defined once), the runner behind `ofsted run` and `ofsted rerun`, and
everything that needs Airflow: the DAG's notifier, masking, the local stack.

`ingest` never imports this package (nor Airflow), so it stays usable without them.
"""
