"""What a task's process writes is redacted: `ingest.redact` installed, the configured secrets
registered with Airflow's own secrets masker.

A night's task runs in a process the `ofsted` command never started (a Celery worker's task
runner, `airflow tasks test`, a re-run from the UI), so nothing there has called
`ingest.redact.install`, and Airflow masks only what it was told is secret. `MaskSecrets` is
every task's `on_execute_callback` (`orchestration.night.task_kwargs`): in the task's process,
before the task's own code runs, it

- installs `ingest.redact` (stderr, stdout and every stdlib log record: URLs' user-info and the
  configured secrets), and
- gives each configured secret, in each form it could be printed in (`ingest.redact.secrets_of`),
  to `airflow.sdk.log.mask_secret`, which masks it in this process and tells the supervisor
  (the process that writes the task's log file) to mask it too: Airflow's own log lines (an
  exception's traceback, a returned value) are then masked as well.
"""

from __future__ import annotations

from typing import Any

from ingest.settings import Settings


def mask_in_task(settings: Settings) -> tuple[str, ...]:
    """Install the redactor and register every configured secret with Airflow's masker (in the
    task process and its supervisor). Returns the forms registered."""
    from airflow.sdk.log import mask_secret

    from ingest import redact

    redact.install(settings)
    secrets = redact.secrets_of(settings)
    for secret in secrets:
        mask_secret(secret)
    return secrets


class MaskSecrets:
    """A task's `on_execute_callback`: `mask_in_task` in the task's process."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def __call__(self, context: Any = None) -> None:
        mask_in_task(self.settings)
