-- An inspection ends on or after the day it starts.
select
    inspection_key,
    authority_name_as_written,
    inspection_start_date,
    inspection_end_date,
    _sha256
from {{ ref('fct_inspections') }}
where inspection_end_date < inspection_start_date
