{#- The night's date as a SQL date literal: environment variable OFSTED_RUN_DATE (the logical
    date the night passes, so a re-run builds the same calendar), else var('run_date') (by hand:
    `ofsted build` / `dbt build --vars`), else the day dbt runs (UTC). The environment is read
    only when a model runs (`execute`), never while dbt parses: a night's date must not make dbt
    parse the project again (command-line vars would: dbt re-parses everything when they change). -#}
{% macro run_date() -%}
    {%- set value = env_var('OFSTED_RUN_DATE', '') if execute else '' -%}
    {%- if value in (none, '') -%}
        {%- set value = var('run_date', '') -%}
    {%- endif -%}
    {%- if value in (none, '') -%}
        {%- set value = run_started_at.strftime('%Y-%m-%d') -%}
    {%- endif -%}
    cast('{{ value }}' as date)
{%- endmacro %}
