-- One row per letter version of an inspection (int_letters_versioned): when it was dated and
-- fetched, who signed it, and what it changed against the version before, finding by finding
-- (finding_key, int_findings_keyed):
-- - reworded: a section position (category, ordinal) whose finding is new in this version
--   where the version before had, at the same position, a finding this version no longer has;
-- - added / removed: the other new / dropped findings.
-- Version 1 adds all its findings.
with

letters as (

    select * from {{ ref('int_letters_versioned') }}

),

findings as (

    select * from {{ ref('int_findings_keyed') }}

),

new_findings as (

    -- in this version, not in the version before
    select
        this_version.inspection_key,
        this_version.letter_version,
        this_version.category,
        this_version.ordinal
    from findings as this_version
    where not exists (
        select 1 from findings as previous_version
        where
            previous_version.inspection_key = this_version.inspection_key
            and previous_version.letter_version = this_version.letter_version - 1
            and previous_version.finding_key = this_version.finding_key
    )

),

dropped_findings as (

    -- in the version before, not in this version (counted against this version)
    select
        previous_version.inspection_key,
        previous_version.letter_version + 1 as letter_version,
        previous_version.category,
        previous_version.ordinal
    from findings as previous_version
    where
        exists (
            select 1 from letters
            where
                letters.inspection_key = previous_version.inspection_key
                and letters.letter_version = previous_version.letter_version + 1
        )
        and not exists (
            select 1 from findings as this_version
            where
                this_version.inspection_key = previous_version.inspection_key
                and this_version.letter_version = previous_version.letter_version + 1
                and this_version.finding_key = previous_version.finding_key
        )

),

reworded as (

    select
        new_findings.inspection_key,
        new_findings.letter_version,
        count(*) as reworded_count
    from new_findings
    inner join dropped_findings
        on
            new_findings.inspection_key = dropped_findings.inspection_key
            and new_findings.letter_version = dropped_findings.letter_version
            and new_findings.category = dropped_findings.category
            and new_findings.ordinal = dropped_findings.ordinal
    group by new_findings.inspection_key, new_findings.letter_version

),

new_counts as (

    select
        inspection_key,
        letter_version,
        count(*) as new_count
    from new_findings
    group by inspection_key, letter_version

),

dropped_counts as (

    select
        inspection_key,
        letter_version,
        count(*) as dropped_count
    from dropped_findings
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
        coalesce(new_counts.new_count, 0) - coalesce(reworded.reworded_count, 0) as findings_added_count,
        coalesce(dropped_counts.dropped_count, 0) - coalesce(reworded.reworded_count, 0) as findings_removed_count,
        coalesce(reworded.reworded_count, 0) as findings_reworded_count,
        letters._sha256,
        letters._source_uri,
        letters._fetched_at,
        letters._superseded_by
    from letters
    left join new_counts
        on letters.inspection_key = new_counts.inspection_key and letters.letter_version = new_counts.letter_version
    left join dropped_counts
        on
            letters.inspection_key = dropped_counts.inspection_key
            and letters.letter_version = dropped_counts.letter_version
    left join reworded
        on letters.inspection_key = reworded.inspection_key and letters.letter_version = reworded.letter_version

)

select * from final
