-- Each inspected authority beside its region and England on the same measures, one row per
-- (authority, measure, subject), over every inspection in the warehouse (current letters):
--   share_with_priority_action   inspections with an area for priority action / inspections
--   findings_per_inspection      findings of the subject's category / inspections (per category)
--   share_of_findings            findings with the subject's theme / findings (per theme; a
--                                finding may have several themes, so shares add up past 1)
--   working_days_to_first_letter mean working days from the inspection's last day to its first
--                                letter (inspections whose dates are in dim_dates)
-- Every value is a ratio of sums over inspections (numerator / denominator, both given), so a
-- region's figure weighs each inspection once, not each authority. The authority is as
-- inspected (dim_authorities, as at the inspection); region and England count matched
-- inspections only (an unmatched letter has no region). No statistical neighbours: no
-- published list of them is available to this project.
with

inspections as (

    select * from {{ ref('inspections_wide') }}
    where authority_key is not null

),

themes as (

    select * from {{ ref('dim_themes') }}

),

theme_counts as (

    -- per inspection and theme: how many of its findings have the theme
    select
        findings.inspection_key,
        bridge.theme_key,
        count(distinct findings.finding_key) as finding_count
    from {{ ref('fct_findings') }} as findings
    inner join {{ ref('bridge_findings_themes') }} as bridge on findings.finding_key = bridge.finding_key
    group by findings.inspection_key, bridge.theme_key

),

categories as (

    select
        listed.category,
        listed.category_order
    from (
        values
        {%- for category in var('finding_categories') %}
            ('{{ category }}', {{ loop.index }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as listed (category, category_order)

),

inspection_measures as (

    -- one row per inspection and measure: its numerator and denominator
    select
        inspection_key,
        authority_key,
        region,
        'share_with_priority_action' as measure,
        'all' as subject,
        'Share of inspections with a priority action' as measure_name,
        0 as measure_order,
        cast(has_priority_action as integer) as numerator,
        1 as denominator
    from inspections

    union all

    select
        inspections.inspection_key,
        inspections.authority_key,
        inspections.region,
        'findings_per_inspection' as measure,
        categories.category as subject,
        'Findings per inspection: ' || replace(categories.category, '_', ' ') as measure_name,
        categories.category_order as measure_order,
        case categories.category
            {%- for category in var('finding_categories') %}
                when '{{ category }}' then inspections.{{ category }}_count
            {%- endfor %}
        end as numerator,
        1 as denominator
    from inspections
    cross join categories

    union all

    select
        inspections.inspection_key,
        inspections.authority_key,
        inspections.region,
        'share_of_findings' as measure,
        themes.theme_code as subject,
        'Share of findings: ' || themes.theme_name as measure_name,
        100 + row_number() over (partition by inspections.inspection_key order by themes.theme_code)
            as measure_order,
        coalesce(theme_counts.finding_count, 0) as numerator,
        inspections.finding_count as denominator
    from inspections
    cross join themes
    left join theme_counts
        on
            inspections.inspection_key = theme_counts.inspection_key
            and themes.theme_key = theme_counts.theme_key

    union all

    select
        inspection_key,
        authority_key,
        region,
        'working_days_to_first_letter' as measure,
        'all' as subject,
        'Working days from inspection to first letter (mean)' as measure_name,
        1000 as measure_order,
        working_days_from_inspection_to_first_letter as numerator,
        1 as denominator
    from inspections
    where working_days_from_inspection_to_first_letter is not null

),

by_authority as (

    select
        authority_key,
        any_value(region) as region,
        measure,
        subject,
        any_value(measure_name) as measure_name,
        min(measure_order) as measure_order,
        sum(numerator) as numerator,
        sum(denominator) as denominator,
        count(*) as inspection_count
    from inspection_measures
    group by authority_key, measure, subject

),

by_area as (

    -- the region's and England's sums: one aggregation at both grains (England is the row of
    -- the grouping set without region; a null region is a region of its own)
    select
        region,
        grouping(region) = 1 as is_england,
        measure,
        subject,
        sum(numerator) as numerator,
        sum(denominator) as denominator,
        count(*) as inspection_count,
        count(distinct authority_key) as authority_count
    from inspection_measures
    group by grouping sets ((region, measure, subject), (measure, subject))

),

by_region as (

    select * from by_area
    where not is_england

),

england as (

    select * from by_area
    where is_england

),

final as (

    select
        by_authority.authority_key,
        authorities.gss_code,
        authorities.authority_name,
        by_authority.region,
        by_authority.measure,
        by_authority.subject,
        by_authority.measure_name,
        by_authority.measure_order,
        by_authority.numerator as authority_numerator,
        by_authority.denominator as authority_denominator,
        by_authority.inspection_count as authority_inspection_count,
        cast(by_authority.numerator as double) / nullif(by_authority.denominator, 0) as authority_value,
        by_region.numerator as region_numerator,
        by_region.denominator as region_denominator,
        by_region.inspection_count as region_inspection_count,
        by_region.authority_count as region_authority_count,
        cast(by_region.numerator as double) / nullif(by_region.denominator, 0) as region_value,
        england.numerator as england_numerator,
        england.denominator as england_denominator,
        england.inspection_count as england_inspection_count,
        england.authority_count as england_authority_count,
        cast(england.numerator as double) / nullif(england.denominator, 0) as england_value
    from by_authority
    inner join {{ ref('dim_authorities') }} as authorities on by_authority.authority_key = authorities.authority_key
    inner join england
        on by_authority.measure = england.measure and by_authority.subject = england.subject
    left join by_region
        on
            by_authority.region is not distinct from by_region.region
            and by_authority.measure = by_region.measure
            and by_authority.subject = by_region.subject

)

select * from final
