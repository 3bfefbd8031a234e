-- How often each theme comes up, by financial year of the inspection and category: the number
-- of findings and of inspections with at least one such finding.
with

inspections as (

    select * from {{ ref('fct_inspections') }}

),

findings as (

    select * from {{ ref('fct_findings') }}

),

bridge as (

    select * from {{ ref('bridge_findings_themes') }}

),

themes as (

    select * from {{ ref('dim_themes') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

final as (

    select
        dates.financial_year,
        themes.theme_name,
        findings.category,
        count(*) as finding_count,
        count(distinct findings.inspection_key) as inspection_count
    from bridge
    inner join findings on bridge.finding_key = findings.finding_key
    inner join themes on bridge.theme_key = themes.theme_key
    inner join inspections on findings.inspection_key = inspections.inspection_key
    inner join dates on inspections.inspection_start_date = dates.date_day
    group by all

)

select * from final
order by financial_year, theme_name, category
