"""The DAG's dbt tasks: one `dbt build` per layer (seeds, staging, intermediate + marts).

Measured under the scheduler, a task per model cost ~2.5 s of dbt and several seconds of task
start-up each (38 tasks, 103-159 s a night on three letters); one task per layer keeps the
order visible and a re-run after a fix small, at the cost of three start-ups. Each layer is
`dbt build --select <layer> --indirect-selection buildable`: a layer builds its models and
runs every test whose parents are built by then (a relationships test from a mart to a seed
runs with the marts), so a failing test fails its layer's task and names itself in the error.

DAG parsing reads no dbt: the layers come from the manifest that `make setup` (and the
Dockerfile) builds with `dbt parse`, so parsing costs a JSON read. A missing manifest, or one
older than any file of the dbt project, fails the parse with a one-line message, as does a
model that no layer selects. A layer whose only failures are dbt tests fails at once, without
retries (rebuilding cannot change a failed test's data); other dbt errors are retried.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from pathlib import Path
from typing import Any

from cosmos.exceptions import CosmosDbtRunError
from cosmos.operators.local import DbtBuildLocalOperator

from ingest.settings import Settings
from orchestration.notifiers import DbtTestsFailed
from orchestration.steps import DBT_VARS_TEMPLATE, Night, Step

# task id -> dbt selector; the order is the order of the night
LAYERS: dict[str, list[str]] = {
    "seeds": ["resource_type:seed"],
    "staging": ["path:models/staging"],
    "marts": ["path:models/intermediate", "path:models/marts"],
}
PROJECT_INPUTS = ("dbt_project.yml", "models", "seeds", "tests", "macros", "analyses", "snapshots")


class ManifestError(RuntimeError):
    """The dbt manifest is missing, stale or does not match the layers (one line)."""


def manifest_path(project_dir: Path) -> Path:
    return project_dir / "target" / "manifest.json"


def _newest_input(project_dir: Path) -> tuple[float, Path | None]:
    newest, which = 0.0, None
    for name in PROJECT_INPUTS:
        top = project_dir / name
        for p in [top] if top.is_file() else (top.rglob("*") if top.is_dir() else []):
            if p.is_file() and p.stat().st_mtime > newest:
                newest, which = p.stat().st_mtime, p
    return newest, which


def _layer_of(node: dict) -> str | None:
    if node.get("resource_type") == "seed":
        return "seeds"
    path = str(node.get("original_file_path", ""))
    for layer, selectors in LAYERS.items():
        for sel in selectors:
            if sel.startswith("path:") and path.startswith(sel[len("path:"):] + "/"):
                return layer
    return None


def layer_nodes(project_dir: Path) -> dict[str, list[str]]:
    """Layer -> the models and seeds it builds, from a fresh manifest (or ManifestError)."""
    path = manifest_path(project_dir)
    if not path.is_file():
        raise ManifestError(f"dbt manifest {path} is missing: run `make setup` (or `dbt parse`)")
    newest, which = _newest_input(project_dir)
    if newest > path.stat().st_mtime:
        raise ManifestError(f"dbt manifest {path} is older than {which}: run `make setup` (or `dbt parse`)")
    try:
        nodes = json.loads(path.read_text())["nodes"]
    except (OSError, ValueError, KeyError) as exc:
        raise ManifestError(f"dbt manifest {path} is unreadable ({type(exc).__name__}): "
                            "run `make setup`") from None
    out: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    for node in nodes.values():
        if node.get("resource_type") not in ("model", "seed"):
            continue
        layer = _layer_of(node)
        if layer is None:
            raise ManifestError(f"dbt {node['resource_type']} {node.get('original_file_path')} is in "
                                "no layer of orchestration/dbt.py LAYERS")
        out[layer].append(node["name"])
    return {layer: sorted(names) for layer, names in out.items()}


def manifest_tests(project_dir: Path) -> set[str]:
    """Names of the dbt tests in the manifest (data tests, singular and generic)."""
    try:
        nodes = json.loads(manifest_path(project_dir).read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        return set()
    return {n["name"] for n in nodes.values() if n.get("resource_type") == "test"}


def failed_nodes(message: str) -> list[str]:
    """Node names in Cosmos' "dbt invocation completed with errors: <name>: <result>" lines."""
    body = message.split("completed with errors:", 1)[-1] if "completed with errors:" in message else ""
    return [line.split(":", 1)[0].strip() for line in body.splitlines() if ":" in line]



class DbtLayerOperator(DbtBuildLocalOperator):
    """A layer's `dbt build`. When every failed node is a test, raise DbtTestsFailed (no retry:
    the alert names the tests now, not after two rebuilds of the same data)."""

    def execute(self, context, **kwargs):
        try:
            return super().execute(context, **kwargs)
        except CosmosDbtRunError as exc:
            names = failed_nodes(str(exc))
            if names and set(names) <= manifest_tests(Path(self.project_dir)):
                raise DbtTestsFailed(str(exc)) from exc
            raise


# --- the night's dbt steps: one factory, read by orchestration.night --------------------------

class DbtLayerFailed(RuntimeError):
    """A layer's `dbt build` failed in-process (a model, or dbt itself); its failures, one a line."""


def layer_args(layer: str) -> list[str]:
    """A layer's dbt command: the same selection in the DAG and in an in-process re-run."""
    return ["build", "--select", *LAYERS[layer], "--indirect-selection", "buildable"]


def dbt_failures(settings: Settings) -> list[tuple[str, str]]:
    """(unique_id, `name: message`) of each node that failed or errored in dbt's last command."""
    try:
        results = json.loads((settings.dbt_target_dir / "run_results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for r in results.get("results", []):
        if r.get("status") in ("fail", "error"):
            uid = str(r.get("unique_id", "?"))
            message = " ".join(str(r.get("message") or r.get("status")).split())
            out.append((uid, f"{uid.split('.')[-1]}: {message}"[:300]))
    return out


def build_layer(night: Night, layer: str) -> dict[str, Any]:
    """A layer's `dbt build` in this process (`ofsted rerun`), with the night's vars."""
    from ingest.warehouse.build import EXIT_OK, run_dbt

    args = [*layer_args(layer), "--vars", json.dumps(night.dbt_vars)]
    code = run_dbt(night.settings, args)
    if code == EXIT_OK:
        return {"layer": layer, "select": LAYERS[layer]}
    failed = dbt_failures(night.settings)
    lines = [line for _, line in failed]
    head = f"dbt build --select {' '.join(LAYERS[layer])}: "
    if failed and all(uid.startswith("test.") for uid, _ in failed):
        raise DbtTestsFailed(head + f"{len(failed)} test(s) failed; " + "\n".join(lines))
    raise DbtLayerFailed(head + ("a model or test failed" if failed else "dbt could not run")
                         + ("; " + "\n".join(lines) if lines else ""))


def _layer_operator(settings: Settings, layer: str, **task: Any) -> DbtLayerOperator:
    """A layer's task in the DAG: the same selection as `build_layer`, through Cosmos."""
    from cosmos import ProfileConfig
    from cosmos.constants import InvocationMode

    return DbtLayerOperator(
        project_dir=settings.dbt_project_dir,
        profile_config=ProfileConfig(
            profile_name="ofsted_letters",
            target_name="work",
            profiles_yml_filepath=settings.dbt_profiles_dir / "profiles.yml",
        ),
        select=LAYERS[layer],
        indirect_selection="buildable",  # a test runs once every model it reads is built
        # the night's id and date (its logical date; a manual run triggered without one: when it
        # was asked to run): dim_dates ends the year after it, the same on a re-run of that night
        vars=dict(DBT_VARS_TEMPLATE),
        env={"OFSTED_WORK_WAREHOUSE": str(settings.work_warehouse), "DO_NOT_TRACK": "1"},
        install_deps=False,  # no dbt packages
        invocation_mode=InvocationMode.DBT_RUNNER,  # in-process; the callback releases the file
        dbt_executable_path=str(settings.dbt_executable),
        callback="ingest.warehouse.build.release_dbt_duckdb",
        **task,
    )


def dbt_steps(settings: Settings) -> list[Step]:
    """The night's dbt steps, one per layer, in order: a Cosmos task each in the DAG, and the same
    selection through `run_dbt` in an in-process re-run. The layers come from the manifest."""
    return [
        Step(name=f"dbt.{layer}", call=partial(build_layer, layer=layer),
             doc=f"`dbt build --select {' '.join(LAYERS[layer])}`: {', '.join(nodes) or '(nothing)'}",
             data_dir=True, work_warehouse=True, timeout=dt.timedelta(minutes=60),
             operator=partial(_layer_operator, settings, layer))
        for layer, nodes in layer_nodes(settings.dbt_project_dir).items()
    ]
