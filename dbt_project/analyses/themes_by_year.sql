-- How often each theme comes up, by financial year of the inspection and category: the number
-- of findings and of inspections with at least one such finding.
-- Parameters (all optional, --var NAME=VALUE):
--   category  only this category: strength, satisfactory, area_for_development or priority_action
--   region    only inspections of authorities in this region
-- Run: ofsted analysis themes_by_year [--var category=area_for_development]
--  or: ofsted sql -f dbt_project/analyses/themes_by_year.sql [--var ...]
with

findings as (

    select * from marts.findings_wide
    where
        (getvariable('category') is null or category = getvariable('category'))
        and (getvariable('region') is null or region = getvariable('region'))

),

findings_themes as (

    select
        financial_year,
        category,
        inspection_key,
        unnest(theme_names) as theme_name
    from findings

),

final as (

    select
        financial_year,
        theme_name,
        category,
        count(*) as finding_count,
        count(distinct inspection_key) as inspection_count
    from findings_themes
    group by all

)

select * from final
order by financial_year, theme_name, category
