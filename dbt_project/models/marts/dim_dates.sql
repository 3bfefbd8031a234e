-- One row per calendar day from 1 January of the first letter's year to 31 December of the
-- year after the night's run date (var run_date, macro run_date), and over every date in the
-- letters. Financial year runs April-March ("2010-11"), academic year September-August.
-- England and Wales bank holidays come from the seed bank_holidays, which lists each holiday on
-- its date and, when that date is a Saturday or Sunday, again on the substitute weekday ("Christmas
-- Day (observed)"). The day off is the substitute (Banking and Financial Dealings Act 1971, s. 1
-- and Schedule 1): a holiday is a bank holiday only on a weekday; the weekend date keeps its name
-- but is not flagged (2010, 2011, 2012: 8, 9, 9 bank holidays). A working day is a weekday that
-- is not a bank holiday. working_day_number counts working days from the first
-- day, so the working days between two dates are the difference of their numbers.
with

letters as (

    select * from {{ ref('stg_raw__letters') }}

),

bank_holidays as (

    select * from {{ ref('bank_holidays') }}

),

letter_bounds as (

    select
        min(least(inspection_start_date, inspection_end_date, coalesce(letter_date, inspection_start_date)))
            as first_letter_day,
        max(greatest(inspection_start_date, inspection_end_date, coalesce(letter_date, inspection_end_date)))
            as last_letter_day
    from letters

),

bounds as (

    select
        make_date(year(coalesce(first_letter_day, {{ run_date() }})), 1, 1) as first_day,
        greatest(
            make_date(year({{ run_date() }}) + 1, 12, 31),
            coalesce(last_letter_day, {{ run_date() }})
        ) as last_day
    from letter_bounds

),

days as (

    select cast(unnest(generate_series(first_day, last_day, interval 1 day)) as date) as date_day
    from bounds

),

holiday_days as (

    select
        holiday_date,
        string_agg(holiday_name, '; ' order by holiday_name) as bank_holiday_name
    from bank_holidays
    group by holiday_date

),

flagged as (

    select
        days.date_day,
        holiday_days.bank_holiday_name,
        holiday_days.holiday_date is not null and isodow(days.date_day) < 6 as is_bank_holiday,
        isodow(days.date_day) >= 6 as is_weekend,
        isodow(days.date_day) < 6 and holiday_days.holiday_date is null as is_working_day,
        case when month(days.date_day) >= 4 then year(days.date_day) else year(days.date_day) - 1 end
            as financial_year_start,
        case when month(days.date_day) >= 9 then year(days.date_day) else year(days.date_day) - 1 end
            as academic_year_start
    from days
    left join holiday_days on days.date_day = holiday_days.holiday_date

),

final as (

    select
        date_day,
        year(date_day) as calendar_year,
        quarter(date_day) as calendar_quarter,
        month(date_day) as month_number,
        monthname(date_day) as month_name,
        strftime(date_day, '%Y-%m') as year_month,  -- noqa: RF04
        day(date_day) as day_of_month,
        isodow(date_day) as iso_day_of_week,
        dayname(date_day) as day_name,
        weekofyear(date_day) as iso_week,
        is_weekend,
        is_bank_holiday,
        bank_holiday_name,
        is_working_day,
        cast(count(*) filter (where is_working_day) over (order by date_day) as integer) as working_day_number,
        financial_year_start,
        financial_year_start || '-' || right(cast(financial_year_start + 1 as varchar), 2) as financial_year,
        academic_year_start,
        academic_year_start || '-' || right(cast(academic_year_start + 1 as varchar), 2) as academic_year
    from flagged

)

select * from final
