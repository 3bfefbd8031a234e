-- Data-quality warning: the previous inspection a letter states ("October 2009", "12 October
-- 2009") does not match the one the warehouse links (previous_inspection_key: the same
-- authority's inspection before it): the linked one did not take place within
-- var('dq_previous_inspection_tolerance_months') month(s) of the stated month. A statement
-- that is not a date is reported too (stated_month null). A letter with nothing linked (its
-- previous inspection predates the warehouse's letters) is not a mismatch.
{{ config(severity='warn', store_failures=true) }}

with

inspections as (

    select * from {{ ref('fct_inspections') }}

),

stated as (

    select
        inspection_key,
        gss_code,
        authority_name_as_written,
        inspection_start_date,
        previous_inspection_key,
        previous_inspection_as_written,
        _source_uri,
        cast(
            date_trunc(
                'month',
                try_strptime(previous_inspection_as_written, ['%d %B %Y', '%B %Y', '%d %b %Y', '%b %Y'])
            ) as date
        ) as stated_month
    from inspections
    where previous_inspection_as_written is not null

),

compared as (

    select
        stated.*,
        linked.inspection_start_date as linked_start_date,
        linked.inspection_end_date as linked_end_date
    from stated
    left join inspections as linked on stated.previous_inspection_key = linked.inspection_key

)

select
    inspection_key,
    gss_code,
    authority_name_as_written,
    inspection_start_date,
    previous_inspection_as_written,
    stated_month,
    previous_inspection_key,
    linked_start_date,
    _source_uri
from compared
where
    stated_month is null
    or (linked_start_date is not null and not (
        stated_month
        between date_trunc('month', linked_start_date)
        - interval ({{ var('dq_previous_inspection_tolerance_months') }}) month
        and date_trunc('month', linked_end_date)
        + interval ({{ var('dq_previous_inspection_tolerance_months') }}) month
    ))
