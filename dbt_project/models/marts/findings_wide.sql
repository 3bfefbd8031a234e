-- One row per current finding with everything an analyst filters or groups it by: the
-- inspection, the authority (as written and as matched, GSS and DfE codes, region, type,
-- today's authorities), the inspection's dates with their calendar, financial and academic
-- years, the category, its themes as a list (so the columns do not change with the theme
-- seed), the inspector and the letter's source URI. Rebuilt in full each night (a plain
-- table over the incremental facts).
with

findings as (

    select * from {{ ref('fct_findings') }}

),

inspections as (

    select * from {{ ref('fct_inspections') }}

),

authorities as (

    select * from {{ ref('dim_authorities') }}

),

inspectors as (

    select * from {{ ref('dim_inspectors') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

finding_themes as (

    select
        bridge.finding_key,
        list(bridge.theme_code order by bridge.theme_code) as themes,
        list(themes.theme_name order by bridge.theme_code) as theme_names
    from {{ ref('bridge_findings_themes') }} as bridge
    inner join {{ ref('dim_themes') }} as themes on bridge.theme_key = themes.theme_key
    group by bridge.finding_key

),

final as (

    select
        findings.finding_key,
        findings.inspection_key,
        findings.authority_key,
        findings.category,
        findings.heading,
        findings.ordinal,
        findings.finding_text,
        coalesce(finding_themes.themes, []) as themes,
        coalesce(finding_themes.theme_names, []) as theme_names,
        inspections.authority_name_as_written,
        authorities.authority_name,
        inspections.is_authority_matched,
        inspections.gss_code,
        inspections.dfe_la_code,
        authorities.region,
        authorities.authority_type,
        inspections.current_gss_codes,
        inspections.current_dfe_la_codes,
        inspections.inspection_start_date,
        inspections.inspection_end_date,
        inspections.letter_date,
        dates.calendar_year,
        dates.financial_year,
        dates.academic_year,
        inspections.has_priority_action,
        inspections.inspector_key,
        inspectors.inspector_name,
        inspections._source_uri as source_uri,
        findings._sha256
    from findings
    inner join inspections on findings.inspection_key = inspections.inspection_key
    left join authorities on findings.authority_key = authorities.authority_key
    left join inspectors on inspections.inspector_key = inspectors.inspector_key
    left join dates on inspections.inspection_start_date = dates.date_day
    left join finding_themes on findings.finding_key = finding_themes.finding_key

)

select * from final
