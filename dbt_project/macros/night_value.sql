{#- A value the night gives dbt: environment variable OFSTED_<NAME> (the night sets OFSTED_RUN_ID
    and OFSTED_RUN_DATE: `ingest.warehouse.build.night_env`), else var(name) (by hand: `dbt build
    --vars`), else `default`. The environment is read only when a node runs (`execute`), never
    while dbt parses: a night's id or date must not make dbt parse the project again, which
    command-line vars would (dbt re-parses everything when they change). -#}
{% macro night_value(name, default='') -%}
    {%- set value = env_var('OFSTED_' ~ (name | upper), '') if execute else '' -%}
    {%- if value in (none, '') -%}
        {%- set value = var(name, default) -%}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}
