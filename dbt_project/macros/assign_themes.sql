{#- (_sha256, category, ordinal, theme_code) for every finding of `findings` (a relation or CTE
    with _sha256, category, ordinal, finding_text) and every theme whose pattern matches its text
    (RE2, case-insensitive). The patterns of the seed finding_themes are written in as literals
    (macro finding_theme_rules). Used by int_findings_themed (all findings) and by the
    incremental bridge_findings_themes (only the findings of new or re-parsed letters, so that
    a night's build does not run the regular expressions over every finding again). -#}
{% macro assign_themes(findings) %}
    {%- set rules = finding_theme_rules() %}
    {%- for theme_code, pattern in rules %}
    select
        _sha256,
        category,
        ordinal,
        {{ sql_string(theme_code) }} as theme_code
    from {{ findings }}
    where regexp_matches(finding_text, {{ sql_string(pattern) }}, 'i')
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    -- the seed is not loaded yet: no themes
    select _sha256, category, ordinal, cast(null as varchar) as theme_code
    from {{ findings }}
    where false
    {%- endfor %}
{% endmacro %}
