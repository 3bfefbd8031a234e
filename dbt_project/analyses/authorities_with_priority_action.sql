-- Authorities with at least one area for priority action, with the findings in question.
-- Run: `dbt compile` (or `dbt docs generate`) writes it to <target>/compiled/ofsted_letters/analyses/;
-- then `ofsted sql -f <that file>`.
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

final as (

    select
        authorities.authority_name,
        authorities.gss_code,
        authorities.region,
        inspections.inspection_start_date,
        inspections.letter_date,
        inspections.priority_action_count,
        findings.ordinal,
        findings.finding_text
    from inspections
    inner join authorities on inspections.authority_key = authorities.authority_key
    inner join findings
        on
            inspections.inspection_key = findings.inspection_key
            and findings.category = 'priority_action'
    where inspections.has_priority_action

)

select * from final
order by authority_name, inspection_start_date, ordinal
