{#- The night's date as a SQL date literal: night_value('run_date') (the logical date the night
    passes, so a re-run builds the same calendar), else the day dbt runs (UTC). -#}
{% macro run_date() -%}
    {%- set value = night_value('run_date') -%}
    {%- if value in (none, '') -%}
        {%- set value = run_started_at.strftime('%Y-%m-%d') -%}
    {%- endif -%}
    cast('{{ value }}' as date)
{%- endmacro %}
