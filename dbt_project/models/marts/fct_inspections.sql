-- One row per inspection (authority + first day of the inspection), described by its current
-- letter (the latest letter date, ties: the latest fetched; int_letters_versioned), with the
-- authority as at the inspection, the current letter's findings counted by category, how many
-- letters describe it and the same authority's previous inspection. Letters whose authority
-- cannot be matched are kept (is_authority_matched = false).
with

letters as (

    select * from {{ ref('int_letters_versioned') }}

),

findings as (

    select * from {{ ref('int_findings_keyed') }}

),

current_letters as (

    select * from letters
    where is_current_version

),

finding_counts as (

    select
        inspection_key,
        {%- for category in var('finding_categories') %}
            count(*) filter (where category = '{{ category }}') as {{ category }}_count,
        {%- endfor %}
        count(*) as finding_count
    from findings
    where is_current_version
    group by inspection_key

),

authority_codes as (

    -- DfE LA code of the authority, and today's authorities covering its area (GSS and DfE)
    select
        gss_code,
        any_value(dfe_la_code) as dfe_la_code,
        list(successor_gss_code order by successor_gss_code) as current_gss_codes,
        list(successor_dfe_la_code order by successor_gss_code) as current_dfe_la_codes
    from {{ ref('bridge_authority_successions') }}
    group by gss_code

),

working_days as (

    select
        date_day,
        working_day_number
    from {{ ref('dim_dates') }}

),

keyed as (

    select
        case
            when current_letters.gss_code is not null
                then {{ surrogate_key(['current_letters.gss_code']) }}
        end as authority_key,
        case
            when current_letters.inspector_name is not null
                then {{ surrogate_key(['lower(current_letters.inspector_name)']) }}
        end as inspector_key,
        current_letters.*
    from current_letters

),

final as (

    select
        keyed.inspection_key,
        keyed.authority_key,
        keyed.inspector_key,
        keyed.gss_code,
        keyed.authority_name as authority_name_as_written,
        keyed.is_authority_matched,
        keyed.authority_match_method,
        keyed.letter_version,
        keyed.letter_version > 1 as is_corrected,
        keyed.first_published_date,
        keyed.letter_date,
        keyed.inspection_start_date,
        keyed.inspection_end_date,
        keyed.first_published_date - keyed.inspection_end_date as days_from_inspection_to_first_letter,
        keyed.letter_date - keyed.inspection_end_date as days_from_inspection_to_letter,
        -- working days (dim_dates.is_working_day) after the inspection's last day up to and
        -- including the first / the current letter's date
        cast(first_letter_day.working_day_number - inspection_end_day.working_day_number as integer)
            as working_days_from_inspection_to_first_letter,
        cast(letter_day.working_day_number - inspection_end_day.working_day_number as integer)
            as working_days_from_inspection_to_letter,
        {%- for category in var('finding_categories') %}
            coalesce(finding_counts.{{ category }}_count, 0) as {{ category }}_count,
        {%- endfor %}
        coalesce(finding_counts.finding_count, 0) as finding_count,
        coalesce(finding_counts.priority_action_count, 0) > 0 as has_priority_action,
        case
            when keyed.authority_key is not null
                then
                    lag(keyed.inspection_key) over (
                        partition by keyed.authority_key
                        order by keyed.inspection_start_date, keyed.inspection_key
                    )
        end as previous_inspection_key,
        keyed.previous_inspection as previous_inspection_as_written,
        keyed.recipient_name,
        keyed.recipient_title,
        keyed.statutory_basis,
        keyed.summary,
        keyed.source_format,
        authority_codes.dfe_la_code,
        authority_codes.current_gss_codes,
        authority_codes.current_dfe_la_codes,
        keyed._sha256,
        keyed._source_uri,
        keyed._fetched_at,
        keyed._parser_version,
        keyed._parsed_at
    from keyed
    left join finding_counts on keyed.inspection_key = finding_counts.inspection_key
    left join authority_codes on keyed.gss_code = authority_codes.gss_code
    left join working_days as letter_day on keyed.letter_date = letter_day.date_day
    left join working_days as first_letter_day on keyed.first_published_date = first_letter_day.date_day
    left join working_days as inspection_end_day on keyed.inspection_end_date = inspection_end_day.date_day

)

select * from final
