-- Areas for development that recur: a theme raised as an area for development (or priority
-- action) at one inspection and again at the same authority's next inspection.
-- Parameters (all optional, --var NAME=VALUE):
--   la_code   only the authority inspected with this DfE LA code, e.g. --var la_code=835 (Dorset)
--   gss_code  or with this GSS code
-- Run: ofsted analysis recurring_areas_for_development [--var la_code=835]
--  or: ofsted sql -f dbt_project/analyses/recurring_areas_for_development.sql [--var ...]
with

inspections as (

    select * from marts.fct_inspections

),

findings as (

    select * from marts.fct_findings

),

bridge as (

    select * from marts.bridge_findings_themes

),

themes as (

    select * from marts.dim_themes

),

authorities as (

    select * from marts.dim_authorities
    where
        (getvariable('la_code') is null or dfe_la_code = getvariable('la_code'))
        and (getvariable('gss_code') is null or gss_code = getvariable('gss_code'))

),

criticised as (

    -- (inspection, theme) pairs raised as something to improve
    select distinct
        findings.inspection_key,
        bridge.theme_key
    from findings
    inner join bridge on findings.finding_key = bridge.finding_key
    where findings.category in ('area_for_development', 'priority_action')

),

final as (

    select
        authorities.authority_name,
        themes.theme_name,
        earlier.inspection_start_date as earlier_inspection_date,
        later.inspection_start_date as next_inspection_date
    from inspections as later
    inner join inspections as earlier on later.previous_inspection_key = earlier.inspection_key
    inner join criticised as raised_before on earlier.inspection_key = raised_before.inspection_key
    inner join criticised as raised_again
        on
            later.inspection_key = raised_again.inspection_key
            and raised_before.theme_key = raised_again.theme_key
    inner join themes on raised_again.theme_key = themes.theme_key
    inner join authorities on later.authority_key = authorities.authority_key

)

select * from final
order by authority_name, next_inspection_date, theme_name
