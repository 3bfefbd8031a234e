-- Authorities with at least one area for priority action, with the findings in question.
-- Parameters (all optional, --var NAME=VALUE):
--   region          only authorities of this region, e.g. --var "region=South West"
--   financial_year  only inspections that started in this financial year, e.g. --var financial_year=2010-11
-- Run: ofsted analysis authorities_with_priority_action [--var ...]
--  or: ofsted sql -f dbt_project/analyses/authorities_with_priority_action.sql [--var ...]
with

inspections as (

    select * from marts.inspections_wide

),

findings as (

    select * from marts.fct_findings

),

final as (

    select
        inspections.authority_name,
        inspections.gss_code,
        inspections.region,
        inspections.financial_year,
        inspections.inspection_start_date,
        inspections.letter_date,
        inspections.priority_action_count,
        findings.ordinal,
        findings.finding_text
    from inspections
    inner join findings
        on
            inspections.inspection_key = findings.inspection_key
            and findings.category = 'priority_action'
    where
        inspections.has_priority_action
        and inspections.authority_key is not null
        and (getvariable('region') is null or inspections.region = getvariable('region'))
        and (
            getvariable('financial_year') is null
            or inspections.financial_year = getvariable('financial_year')
        )

)

select * from final
order by authority_name, inspection_start_date, ordinal
