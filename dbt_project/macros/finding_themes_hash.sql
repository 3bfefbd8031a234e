{#- A scalar subquery: md5 of the theme taxonomy (codes and patterns). bridge_findings_themes
    stores it on every row, so a change of patterns re-assigns every finding on the next
    incremental build. -#}
{% macro finding_themes_hash() -%}
    (
        select md5(string_agg(
            concat_ws('|', theme_code, pattern), chr(10) order by theme_code
        ))
        from {{ ref('dim_themes') }}
    )
{%- endmacro %}
