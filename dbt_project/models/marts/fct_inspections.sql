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
        count(*) filter (where category = 'strength') as strength_count,
        count(*) filter (where category = 'satisfactory') as satisfactory_count,
        count(*) filter (where category = 'area_for_development') as area_for_development_count,
        count(*) filter (where category = 'priority_action') as priority_action_count,
        count(*) as finding_count
    from findings
    where is_current_version
    group by inspection_key

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
        coalesce(finding_counts.strength_count, 0) as strength_count,
        coalesce(finding_counts.satisfactory_count, 0) as satisfactory_count,
        coalesce(finding_counts.area_for_development_count, 0) as area_for_development_count,
        coalesce(finding_counts.priority_action_count, 0) as priority_action_count,
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
        keyed._sha256,
        keyed._source_uri,
        keyed._fetched_at,
        keyed._parser_version,
        keyed._parsed_at
    from keyed
    left join finding_counts on keyed.inspection_key = finding_counts.inspection_key

)

select * from final
