-- One row per (finding, theme) where the theme's pattern matches the finding's text
-- (RE2, case-insensitive). A finding can have several themes, or none. The patterns come from
-- the seed finding_themes and are written into the query as literals (macro assign_themes:
-- constant regular expressions are compiled once, not once per row).
with

findings as (

    select * from {{ ref('stg_raw__findings') }}

),

themes as (

    select * from {{ ref('finding_themes') }}

),

matches as (

    {{ assign_themes('findings') }}

),

final as (

    select
        matches._sha256,
        matches.category,
        matches.ordinal,
        matches.theme_code
    from matches
    inner join themes on matches.theme_code = themes.theme_code

)

select * from final
