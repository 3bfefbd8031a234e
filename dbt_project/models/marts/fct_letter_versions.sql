-- One row per letter version of an inspection (int_letters_versioned): when it was dated and
-- fetched, who signed it, and how many findings it added, removed and reworded against the
-- version before: counted from fct_finding_changes, which pairs the two versions' findings by
-- content (an unchanged finding anywhere in its section is unchanged; a close one is reworded).
-- Version 1 adds all its findings.
with

letters as (

    select * from {{ ref('int_letters_versioned') }}

),

changes as (

    select * from {{ ref('fct_finding_changes') }}

),

change_counts as (

    select
        inspection_key,
        letter_version,
        count(*) filter (where change_type = 'added') as added_count,
        count(*) filter (where change_type = 'removed') as removed_count,
        count(*) filter (where change_type = 'reworded') as reworded_count
    from changes
    group by inspection_key, letter_version

),

final as (

    select
        {{ surrogate_key(['letters.inspection_key', 'letters.letter_version']) }} as letter_version_key,
        letters.inspection_key,
        letters.letter_version,
        letters.is_current_version,
        letters.letter_date,
        case
            when letters.inspector_name is not null
                then {{ surrogate_key(['lower(letters.inspector_name)']) }}
        end as inspector_key,
        letters.inspector_name,
        letters.finding_count,
        case
            when letters.letter_version = 1 then letters.finding_count
            else coalesce(change_counts.added_count, 0)
        end as findings_added_count,
        coalesce(change_counts.removed_count, 0) as findings_removed_count,
        coalesce(change_counts.reworded_count, 0) as findings_reworded_count,
        letters._sha256,
        letters._source_uri,
        letters._fetched_at,
        letters._superseded_by
    from letters
    left join change_counts
        on
            letters.inspection_key = change_counts.inspection_key
            and letters.letter_version = change_counts.letter_version

)

select * from final
