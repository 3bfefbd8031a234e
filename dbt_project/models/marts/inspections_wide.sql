-- One row per inspection (its current letter, as fct_inspections) with everything an analyst
-- compares inspections by: the authority as inspected (GSS and DfE codes, name, region, type),
-- today's authorities covering its area with the share of it each took (a list of structs, from
-- bridge_authority_successions), the calendar, financial and academic year it started in, its
-- findings per category, the themes of its findings (distinct, as a list), the working days from
-- its last day to its first and to its current letter, and the letter version it is described by.
with

inspections as (

    select * from {{ ref('fct_inspections') }}

),

authorities as (

    select * from {{ ref('dim_authorities') }}

),

successions as (

    select * from {{ ref('bridge_authority_successions') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

inspectors as (

    select * from {{ ref('dim_inspectors') }}

),

finding_themes as (

    select
        findings.inspection_key,
        list(distinct themes.theme_code order by themes.theme_code) as themes,
        list(distinct themes.theme_name order by themes.theme_name) as theme_names
    from {{ ref('fct_findings') }} as findings
    inner join {{ ref('bridge_findings_themes') }} as bridge on findings.finding_key = bridge.finding_key
    inner join {{ ref('dim_themes') }} as themes on bridge.theme_key = themes.theme_key
    group by findings.inspection_key

),

todays_authorities as (

    select
        authority_key,
        list(
            {
                'gss_code': successor_gss_code,
                'dfe_la_code': successor_dfe_la_code,
                'authority_name': successor_authority_name,
                'weight': weight,
                'weight_quality': weight_quality,
                'change_type': change_type
            }
            order by weight desc, successor_gss_code asc
        ) as todays_authorities
    from successions
    group by authority_key

),

final as (

    select
        inspections.inspection_key,
        inspections.authority_key,
        inspections.gss_code,
        inspections.dfe_la_code,
        authorities.authority_name,
        inspections.authority_name_as_written,
        inspections.is_authority_matched,
        authorities.region,
        authorities.authority_type,
        todays_authorities.todays_authorities,
        inspections.inspection_start_date,
        inspections.inspection_end_date,
        inspections.first_published_date,
        inspections.letter_date,
        dates.calendar_year,
        dates.financial_year,
        dates.academic_year,
        {%- for category in var('finding_categories') %}
            inspections.{{ category }}_count,
        {%- endfor %}
        inspections.finding_count,
        inspections.has_priority_action,
        coalesce(finding_themes.themes, []) as themes,
        coalesce(finding_themes.theme_names, []) as theme_names,
        inspections.working_days_from_inspection_to_first_letter,
        inspections.working_days_from_inspection_to_letter,
        inspections.letter_version,
        inspections.is_corrected,
        inspectors.inspector_name,
        inspections._source_uri as source_uri,
        inspections._sha256
    from inspections
    left join authorities on inspections.authority_key = authorities.authority_key
    left join todays_authorities on inspections.authority_key = todays_authorities.authority_key
    left join dates on inspections.inspection_start_date = dates.date_day
    left join inspectors on inspections.inspector_key = inspectors.inspector_key
    left join finding_themes on inspections.inspection_key = finding_themes.inspection_key

)

select * from final
