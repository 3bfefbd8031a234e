-- The counts on fct_inspections equal the rows of fct_findings, category by category
-- (and an inspection without findings has zero counts).
with

inspections as (

    select * from {{ ref('fct_inspections') }}

),

findings as (

    select * from {{ ref('fct_findings') }}

),

counted as (

    select
        inspection_key,
        count(*) filter (where category = 'strength') as strength_rows,
        count(*) filter (where category = 'satisfactory') as satisfactory_rows,
        count(*) filter (where category = 'area_for_development') as area_for_development_rows,
        count(*) filter (where category = 'priority_action') as priority_action_rows
    from findings
    group by inspection_key

),

final as (

    select
        inspections.inspection_key,
        inspections.authority_name_as_written,
        inspections.strength_count,
        coalesce(counted.strength_rows, 0) as strength_rows,
        inspections.satisfactory_count,
        coalesce(counted.satisfactory_rows, 0) as satisfactory_rows,
        inspections.area_for_development_count,
        coalesce(counted.area_for_development_rows, 0) as area_for_development_rows,
        inspections.priority_action_count,
        coalesce(counted.priority_action_rows, 0) as priority_action_rows
    from inspections
    left join counted on inspections.inspection_key = counted.inspection_key
    where
        inspections.strength_count != coalesce(counted.strength_rows, 0)
        or inspections.satisfactory_count != coalesce(counted.satisfactory_rows, 0)
        or inspections.area_for_development_count != coalesce(counted.area_for_development_rows, 0)
        or inspections.priority_action_count != coalesce(counted.priority_action_rows, 0)
        or inspections.has_priority_action != (coalesce(counted.priority_action_rows, 0) > 0)

)

select * from final
