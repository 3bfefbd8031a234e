-- Warns when dim_dates runs past the last year of the seed bank_holidays: days beyond it would
-- count as working days although they may be bank holidays. Regenerate the seed with
-- devtools/make_bank_holidays_seed.py --last YEAR.
{{ config(severity='warn', store_failures=true) }}

select
    max(dates.date_day) as dim_dates_last_day,
    (select max(holidays.holiday_date) from {{ ref('bank_holidays') }} as holidays) as last_bank_holiday
from {{ ref('dim_dates') }} as dates
having year(max(dates.date_day)) > (
    select year(max(holidays.holiday_date)) from {{ ref('bank_holidays') }} as holidays
)
