{#- One-off migrations of an existing warehouse, run at the start of every `dbt build` / `dbt run`
    (on-run-start in dbt_project.yml; under Cosmos, every task's dbt invocation).

    audit.schema_version records the version of the marts' keys the warehouse was built with
    (one row per change, newest last). When it is older than var('warehouse_schema_version')
    (or missing, on a warehouse built before versions were recorded), the incremental models
    are dropped, so this build creates them from scratch: a one-off full refresh, logged in
    dbt's output, no manual step. A new warehouse (no version, no incremental model yet) is
    recorded at the required version as 'a new warehouse': nothing was migrated. The new version is recorded at once, so the next invocation
    (the next Cosmos task, or the next night) does not drop them again; a build that fails after
    the drop still finds them missing next time and builds them from scratch.

    Versions: 1 = keys from the letter's sha256; 2 = an inspection is an identity (authority +
    start date) and each letter a version of it; finding keys survive corrections. -#}
{% macro migrate_warehouse() %}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set required = var('warehouse_schema_version') | int -%}
    {%- do run_query("create schema if not exists audit") -%}
    {%- do run_query("create table if not exists audit.schema_version ("
        ~ "version integer not null, recorded_at timestamptz not null, note varchar)") -%}
    {%- set recorded = run_query("select max(version) from audit.schema_version").columns[0].values()[0] -%}
    {%- if recorded is none or recorded | int < required -%}
        {%- set dropped = [] -%}
        {%- for node in graph.nodes.values()
                if node.resource_type == 'model' and node.config.materialized == 'incremental' -%}
            {%- set relation = adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.alias) -%}
            {%- if relation is not none -%}
                {%- do adapter.drop_relation(relation) -%}
                {%- do dropped.append(relation.schema ~ '.' ~ relation.identifier) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if recorded is none and not dropped -%}
            {%- set note = 'a new warehouse' -%}
        {%- else -%}
            {%- set note = 'from ' ~ (recorded if recorded is not none else 'unrecorded') ~ ' to ' ~ required
                ~ (': rebuilt from scratch ' ~ dropped | sort | join(', ') if dropped else ': nothing to rebuild') -%}
        {%- endif -%}
        {%- do run_query("insert into audit.schema_version values (" ~ required ~ ", now(), "
            ~ sql_string(note) ~ ")") -%}
        {%- if dropped -%}
            {%- do log("Warehouse schema version " ~ note
                ~ " (one-off full refresh of the incremental models, this build)", info=true) -%}
        {%- endif -%}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}
