-- An inspection's first letter (version 1, first_published_date) is dated on or after the
-- inspection's last day and within var('max_days_inspection_to_letter') days of it; a later
-- version (a correction) may come any time after, but never before the inspection ended.
-- Undated letters are not judged here.
select
    inspection_key,
    authority_name_as_written,
    inspection_end_date,
    first_published_date,
    days_from_inspection_to_first_letter,
    letter_version,
    letter_date,
    days_from_inspection_to_letter,
    _sha256
from {{ ref('fct_inspections') }}
where
    days_from_inspection_to_first_letter < 0
    or days_from_inspection_to_first_letter > {{ var('max_days_inspection_to_letter') }}
    or days_from_inspection_to_letter < 0
