"""`ofsted analysis`: the worked analyses of `dbt_project/analyses/`, run as they are.

Each analysis is a plain DuckDB query over the marts (no Jinja to compile), so dbt lists and
compiles it (`dbt docs generate`), `ofsted sql -f dbt_project/analyses/NAME.sql` runs it, and so
does `ofsted analysis NAME`. Its parameters are DuckDB variables it reads with
`getvariable('name')`, each with a default written into the query (`coalesce(getvariable('x'),
...)`); `--var name=value` sets one. Its opening comment says what it answers and lists them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.settings import Settings
from ingest.warehouse.query import (
    Output,
    QueryError,
    parse_variables,
    query_variables,
    read_sql,
    run_cli_query,
    run_query,
    with_one_line_errors,
)

NAME = re.compile(r"[a-z0-9_]{1,80}")


@dataclass(frozen=True)
class Analysis:
    name: str
    path: Path
    sql: str

    @property
    def about(self) -> list[str]:
        """The opening comment, without its dashes."""
        lines = []
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                break
            lines.append(line[2:].removeprefix(" "))
        return lines

    @property
    def parameters(self) -> list[str]:
        return query_variables(self.sql)


def analyses_dir(settings: Settings) -> Path:
    return settings.dbt_project_dir / "analyses"


def list_analyses(folder: Path) -> list[Analysis]:
    """Every `NAME.sql` in `folder` (regular files only, never a link), by name."""
    out = []
    for path in sorted(folder.glob("*.sql")):
        if NAME.fullmatch(path.stem) and path.is_file() and not path.is_symlink():
            out.append(read_analysis(path))
    return out


def read_analysis(path: Path) -> Analysis:
    """The analysis in `path`, read as `ofsted sql -f` reads a file (regular files only, capped)."""
    return Analysis(path.stem, path, read_sql(None, path).sql)


def find_analysis(folder: Path, name: str) -> Analysis:
    name = name.removesuffix(".sql")
    found = {a.name: a for a in list_analyses(folder)}
    if name not in found:
        known = ", ".join(found) or "none"
        raise QueryError(f"no analysis {name!r} (there are: {known})")
    return found[name]


def describe(analyses: Sequence[Analysis]) -> str:
    """The list `ofsted analysis` prints without a name."""
    blocks = []
    for a in analyses:
        about = "\n".join(f"    {line}" for line in a.about)
        params = ", ".join(f"--var {p}=..." for p in a.parameters) or "no parameters"
        blocks.append(f"{a.name}  ({params})\n{about}")
    return "\n\n".join(blocks) + "\n"


def cli_analysis(settings: Settings, name: str | None, variables: Sequence[str] | None = None,
                 fmt: str = "table", max_width: int | None = None, wrap: bool = False) -> int:
    """`ofsted analysis [NAME] [--var k=v ...]`: list the analyses, or run one. 0 ok, 1 on error."""

    def action() -> int:
        folder = analyses_dir(settings)
        if name is None:
            sys.stdout.write(describe(list_analyses(folder)))
            return 0
        analysis = find_analysis(folder, name)
        given = parse_variables(variables)
        output = Output(fmt, max_width, wrap)
        run_cli_query(settings, "analysis", lambda **kw: run_query(
            settings.published_warehouse, analysis.sql, output, sys.stdout, script=True,
            variables=given, **kw))
        return 0

    return with_one_line_errors("analysis", action)
