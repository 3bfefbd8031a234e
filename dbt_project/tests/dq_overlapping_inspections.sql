-- Data-quality warning: two inspections of one authority whose periods (start to end date)
-- overlap. One row per pair.
{{ config(severity='warn', store_failures=true) }}

select
    first_inspection.gss_code,
    first_inspection.authority_name_as_written,
    first_inspection.inspection_key as first_inspection_key,
    first_inspection.inspection_start_date as first_start_date,
    first_inspection.inspection_end_date as first_end_date,
    second_inspection.inspection_key as second_inspection_key,
    second_inspection.inspection_start_date as second_start_date,
    second_inspection.inspection_end_date as second_end_date
from {{ ref('fct_inspections') }} as first_inspection
inner join {{ ref('fct_inspections') }} as second_inspection
    on
        first_inspection.authority_key = second_inspection.authority_key
        and first_inspection.inspection_key < second_inspection.inspection_key
        and first_inspection.inspection_start_date <= second_inspection.inspection_end_date
        and first_inspection.inspection_end_date >= second_inspection.inspection_start_date
