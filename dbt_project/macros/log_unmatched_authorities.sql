{#- Print, in dbt's own output, every inspection whose authority was not matched (name as the
    letter writes it, inspection date, letter), so a failing build names what to fix. Called by
    the singular test assert_every_inspection_matches_an_authority when it runs; does nothing
    while parsing or before fct_inspections exists. -#}
{% macro log_unmatched_authorities(inspections) %}
    {%- if execute and load_relation(inspections) is not none -%}
        {%- set unmatched = run_query(
            "select authority_name_as_written, inspection_start_date, _sha256 from "
            ~ inspections ~ " where not is_authority_matched order by 1, 2"
        ) -%}
        {%- for row in unmatched.rows -%}
            {%- do log("Unmatched authority: '" ~ row[0] ~ "' (inspection starting " ~ row[1]
                ~ ", letter " ~ row[2] ~ ")", info=true) -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
