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
    {%- for category in var('finding_categories') %}
        count(*) filter (where category = '{{ category }}') as {{ category }}_rows{{ ',' if not loop.last }}
    {%- endfor %}
    from findings
    group by inspection_key

),

final as (

    select
        inspections.inspection_key,
        inspections.authority_name_as_written,
    {%- for category in var('finding_categories') %}
        inspections.{{ category }}_count,
        coalesce(counted.{{ category }}_rows, 0) as {{ category }}_rows{{ ',' if not loop.last }}
    {%- endfor %}
    from inspections
    left join counted on inspections.inspection_key = counted.inspection_key
    where
        {%- for category in var('finding_categories') %}
            inspections.{{ category }}_count != coalesce(counted.{{ category }}_rows, 0) or
        {%- endfor %}
        inspections.has_priority_action != (coalesce(counted.priority_action_rows, 0) > 0)

)

select * from final
