{#- Schemas are exactly what the project says (`marts`, `staging`, ...), never `main_marts`:
    analysts meet the marts as `marts.fct_inspections`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
