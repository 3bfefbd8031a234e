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

import json
from pathlib import Path

from cosmos.exceptions import CosmosDbtRunError
from cosmos.operators.local import DbtBuildLocalOperator

from orchestration.notifiers import DbtTestsFailed

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
