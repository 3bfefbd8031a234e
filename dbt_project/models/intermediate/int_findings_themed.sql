-- One row per (finding, theme) where the theme's pattern matches the finding's text
-- (RE2, case-insensitive) and its exclude pattern, if any, does not.
-- A finding can have several themes, or none.
with

findings as (

    select * from {{ ref('stg_raw__findings') }}

),

themes as (

    select * from {{ ref('finding_themes') }}

),

final as (

    select
        findings._sha256,
        findings.category,
        findings.ordinal,
        themes.theme_code
    from findings
    inner join themes
        on regexp_matches(findings.finding_text, themes.pattern, 'i')
        and (
            themes.exclude_pattern is null
            or not regexp_matches(findings.finding_text, themes.exclude_pattern, 'i')
        )

)

select * from final
