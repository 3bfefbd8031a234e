-- The findings of the authorities that preceded today's authorities, so today's authority can
-- be set beside the letters about its area: for BCP (E06000058) the 2009-2012 letters about
-- Bournemouth, Poole and Dorset (Christchurch came from Dorset). Change the code to taste; drop
-- the where clause for every current authority.
{% set todays_gss_code = 'E06000058' %}

with

inspections as (

    select * from {{ ref('fct_inspections') }}

),

findings as (

    select * from {{ ref('fct_findings') }}

),

authorities as (

    select * from {{ ref('dim_authorities') }}

),

todays as (

    select
        authorities.authority_key,
        unnest(authorities.current_gss_codes) as current_gss_code
    from authorities

),

current_names as (

    select
        gss_code,
        authority_name
    from authorities
    where is_current

),

final as (

    select
        todays.current_gss_code,
        current_names.authority_name as current_authority_name,
        authorities.gss_code as inspected_gss_code,
        authorities.authority_name as inspected_authority_name,
        inspections.inspection_start_date,
        findings.category,
        findings.ordinal,
        findings.finding_text
    from todays
    inner join current_names on todays.current_gss_code = current_names.gss_code
    inner join authorities on todays.authority_key = authorities.authority_key
    inner join inspections on todays.authority_key = inspections.authority_key
    inner join findings on inspections.inspection_key = findings.inspection_key
    where todays.current_gss_code = '{{ todays_gss_code }}'

)

select * from final
order by inspected_authority_name, inspection_start_date, category, ordinal
