{#- (finding_key, _sha256, theme_code) for every finding of `findings` (a relation or CTE with
    finding_key, _sha256, finding_text) and every theme whose pattern matches its text (RE2,
    case-insensitive). The patterns of the seed finding_themes are written in as literals
    (macro finding_theme_rules). Used by the incremental bridge_findings_themes on the findings
    of new or re-parsed letters only, so that a night's build does not run the regular
    expressions over every finding again. -#}
{% macro assign_themes(findings) %}
    {%- set rules = finding_theme_rules() %}
    {%- for theme_code, pattern in rules %}
    select
        finding_key,
        _sha256,
        {{ sql_string(theme_code) }} as theme_code
    from {{ findings }}
    where regexp_matches(finding_text, {{ sql_string(pattern) }}, 'i')
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    -- the seed is not loaded yet: no themes
    select finding_key, _sha256, cast(null as varchar) as theme_code
    from {{ findings }}
    where false
    {%- endfor %}
{% endmacro %}
