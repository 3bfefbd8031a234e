{#- Print in dbt's own output one line per row of `sql` (a query returning one column of text),
    so a failing test names what to fix. Called by singular tests when they run; does nothing
    while parsing or before `relation` (what the query reads) exists. -#}
{% macro log_rows(relation, sql) %}
    {%- if execute and load_relation(relation) is not none -%}
        {%- for row in run_query(sql).rows -%}
            {%- do log(row[0], info=true) -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
