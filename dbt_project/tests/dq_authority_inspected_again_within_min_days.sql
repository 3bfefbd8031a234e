-- Data-quality warning: an authority inspected again less than
-- var('dq_min_days_between_inspections') days (90) after a previous inspection started. The
-- annual inspections are a year apart; two close together are usually a mis-dated letter or a
-- letter matched to the wrong authority. One row per pair of inspections.
{{ config(severity='warn', store_failures=true) }}

select
    earlier.gss_code,
    earlier.authority_name_as_written,
    earlier.inspection_key as earlier_inspection_key,
    earlier.inspection_start_date as earlier_start_date,
    later.inspection_key as later_inspection_key,
    later.inspection_start_date as later_start_date,
    later.inspection_start_date - earlier.inspection_start_date as days_apart,
    earlier._source_uri as earlier_source_uri,
    later._source_uri as later_source_uri
from {{ ref('fct_inspections') }} as earlier
inner join {{ ref('fct_inspections') }} as later
    on
        earlier.authority_key = later.authority_key
        and earlier.inspection_key != later.inspection_key
        and (
            earlier.inspection_start_date < later.inspection_start_date
            or (
                earlier.inspection_start_date = later.inspection_start_date
                and earlier.inspection_key < later.inspection_key
            )
        )
where later.inspection_start_date - earlier.inspection_start_date < {{ var('dq_min_days_between_inspections') }}
