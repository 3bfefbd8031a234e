-- One row per calendar day, covering the project's calendar range and every date in the
-- letters. Financial year runs April-March ("2010-11"), academic year September-August.
with

letters as (

    select * from {{ ref('stg_raw__letters') }}

),

bounds as (

    select
        least(
            cast('{{ var("calendar_start") }}' as date),
            min(least(inspection_start_date, inspection_end_date, coalesce(letter_date, inspection_start_date)))
        ) as first_day,
        greatest(
            cast('{{ var("calendar_end") }}' as date),
            max(greatest(inspection_start_date, inspection_end_date, coalesce(letter_date, inspection_end_date)))
        ) as last_day
    from letters

),

days as (

    select cast(unnest(generate_series(first_day, last_day, interval 1 day)) as date) as date_day
    from bounds

),

years as (

    select
        date_day,
        case when month(date_day) >= 4 then year(date_day) else year(date_day) - 1 end as financial_year_start,
        case when month(date_day) >= 9 then year(date_day) else year(date_day) - 1 end as academic_year_start
    from days

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
        isodow(date_day) >= 6 as is_weekend,
        financial_year_start,
        financial_year_start || '-' || right(cast(financial_year_start + 1 as varchar), 2) as financial_year,
        academic_year_start,
        academic_year_start || '-' || right(cast(academic_year_start + 1 as varchar), 2) as academic_year
    from years

)

select * from final
