-- The findings of the authorities that preceded one of today's authorities, so today's
-- authority can be set beside the letters about its area, with the share of each inspected
-- area it covers today (bridge_authority_successions): for Bournemouth, Christchurch and Poole
-- (E06000058, the default) the 2009-2012 letters about Bournemouth, Poole and Dorset
-- (Christchurch came from Dorset: about an eighth of it).
-- Parameters (--var NAME=VALUE):
--   gss_code  today's authority by GSS code (default E06000058)
--   la_code   or by its DfE LA code, e.g. --var la_code=838 (Dorset Council)
-- Run: ofsted analysis predecessor_findings_of_todays_authorities --var la_code=838
--  or: ofsted sql -f dbt_project/analyses/predecessor_findings_of_todays_authorities.sql --var la_code=838
with

successions as (

    select * from marts.bridge_authority_successions

),

inspections as (

    select * from marts.fct_inspections

),

findings as (

    select * from marts.fct_findings

),

todays as (

    select * from successions
    where
        case
            when getvariable('la_code') is not null
                then successor_dfe_la_code = getvariable('la_code')
            else successor_gss_code = coalesce(getvariable('gss_code'), 'E06000058')
        end

),

final as (

    select
        todays.successor_gss_code as current_gss_code,
        todays.successor_authority_name as current_authority_name,
        todays.gss_code as inspected_gss_code,
        todays.authority_name as inspected_authority_name,
        round(todays.weight, 3) as share_of_inspected_area,
        inspections.inspection_start_date,
        findings.category,
        findings.ordinal,
        findings.finding_text
    from todays
    inner join inspections on todays.authority_key = inspections.authority_key
    inner join findings on inspections.inspection_key = findings.inspection_key

)

select * from final
order by inspected_authority_name, inspection_start_date, category, ordinal
