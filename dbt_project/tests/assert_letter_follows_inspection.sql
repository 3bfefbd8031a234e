-- A letter is dated after the inspection it reports on (on or after its last day) and within
-- var('max_days_inspection_to_letter') days of it. Letters without a date are not judged here.
select
    inspection_key,
    authority_name_as_written,
    inspection_end_date,
    letter_date,
    days_from_inspection_to_letter,
    _sha256
from {{ ref('fct_inspections') }}
where
    letter_date is not null
    and (
        days_from_inspection_to_letter < 0
        or days_from_inspection_to_letter > {{ var('max_days_inspection_to_letter') }}
    )
