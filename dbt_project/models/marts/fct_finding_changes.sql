-- What each correction changed: one row per finding added, removed or reworded by a letter
-- version against the version before it (versions 2, 3..; version 1 states everything first).
-- Findings of the two versions are paired within a category by content, not by position:
-- 1. unchanged: the same normalised text (finding_key, int_findings_keyed) anywhere in the
--    section; not listed here, however far it moved;
-- 2. reworded: of the rest, pairs whose word similarity (below) is at least
--    var('finding_reworded_min_similarity'), paired one to one greedily: the most similar pair
--    first (ties: the earlier old position, then the earlier new one), then the most similar
--    pair of what is left, and so on;
-- 3. added / removed: what is left of the new / the old version.
-- Word similarity: the Dice coefficient of the two findings' sets of words (normalised text split
-- on spaces, search stop words dropped): 2 |A and B| / (|A| + |B|). A split finding pairs its
-- closest part with the old text (reworded) and adds the others; a merge rewords the closest old
-- finding and removes the others.
{% set min_similarity = var('finding_reworded_min_similarity') %}
{%- set stop_words -%}
    [{% for w in search_stop_words() %}'{{ w }}'{% if not loop.last %}, {% endif %}{% endfor %}]
{%- endset %}

with recursive

findings as (

    select * from {{ ref('int_findings_keyed') }}

),

letters as (

    select * from {{ ref('int_letters_versioned') }}

),

corrections as (

    select
        inspection_key,
        letter_version
    from letters
    where letter_version > 1

),

compared as (

    -- each correction's findings (side 'new') and the version before's (side 'old'), the latter
    -- numbered as the correction they are compared with
    select
        'new' as side,
        findings.*
    from findings
    inner join corrections
        on
            findings.inspection_key = corrections.inspection_key
            and findings.letter_version = corrections.letter_version

    union all

    select
        'old' as side,
        findings.* replace (corrections.letter_version as letter_version)
    from findings
    inner join corrections
        on
            findings.inspection_key = corrections.inspection_key
            and findings.letter_version = corrections.letter_version - 1

),

unmatched as (

    -- findings whose normalised text the other side lacks, with their sets of words
    select
        *,
        list_distinct(list_filter(
            string_split(finding_text_normalised, ' '),
            lambda word: word != '' and not list_contains({{ stop_words }}, word)
        )) as words
    from compared as this_side
    where not exists (
        select 1 from compared as other_side
        where
            other_side.inspection_key = this_side.inspection_key
            and other_side.letter_version = this_side.letter_version
            and other_side.side != this_side.side
            and other_side.finding_key = this_side.finding_key
    )

),

unmatched_old as (

    select * from unmatched
    where side = 'old'

),

unmatched_new as (

    select * from unmatched
    where side = 'new'

),

candidate_pairs as (

    select
        unmatched_old.inspection_key,
        unmatched_old.letter_version,
        unmatched_old.category,
        unmatched_old.finding_key as old_finding_key,
        unmatched_new.finding_key as new_finding_key,
        unmatched_old.ordinal as old_ordinal,
        unmatched_new.ordinal as new_ordinal,
        2.0 * len(list_intersect(unmatched_old.words, unmatched_new.words))
        / nullif(len(unmatched_old.words) + len(unmatched_new.words), 0) as similarity
    from unmatched_old
    inner join unmatched_new
        on
            unmatched_old.inspection_key = unmatched_new.inspection_key
            and unmatched_old.letter_version = unmatched_new.letter_version
            and unmatched_old.category = unmatched_new.category

),

ranked_pairs as (

    select
        *,
        row_number() over (
            partition by inspection_key, letter_version, category
            order by similarity desc, old_ordinal asc, new_ordinal asc
        ) as pair_rank
    from candidate_pairs
    where similarity >= {{ min_similarity }}

),

greedy (
    inspection_key, letter_version, category, pair_rank, old_finding_key, new_finding_key,
    similarity, is_paired, paired_old_keys, paired_new_keys
) as (

    -- walk each section's candidate pairs best first, keeping a pair when neither side is taken
    select
        inspection_key,
        letter_version,
        category,
        pair_rank,
        old_finding_key,
        new_finding_key,
        similarity,
        true as is_paired,
        [old_finding_key] as paired_old_keys,
        [new_finding_key] as paired_new_keys
    from ranked_pairs
    where pair_rank = 1

    union all

    select
        next_pair.inspection_key,
        next_pair.letter_version,
        next_pair.category,
        next_pair.pair_rank,
        next_pair.old_finding_key,
        next_pair.new_finding_key,
        next_pair.similarity,
        not(
            list_contains(greedy.paired_old_keys, next_pair.old_finding_key)
            or list_contains(greedy.paired_new_keys, next_pair.new_finding_key)
        ) as is_paired,
        case
            when
                list_contains(greedy.paired_old_keys, next_pair.old_finding_key)
                or list_contains(greedy.paired_new_keys, next_pair.new_finding_key)
                then greedy.paired_old_keys
            else list_append(greedy.paired_old_keys, next_pair.old_finding_key)
        end as paired_old_keys,
        case
            when
                list_contains(greedy.paired_old_keys, next_pair.old_finding_key)
                or list_contains(greedy.paired_new_keys, next_pair.new_finding_key)
                then greedy.paired_new_keys
            else list_append(greedy.paired_new_keys, next_pair.new_finding_key)
        end as paired_new_keys
    from greedy
    inner join ranked_pairs as next_pair
        on
            greedy.inspection_key = next_pair.inspection_key
            and greedy.letter_version = next_pair.letter_version
            and greedy.category = next_pair.category
            and greedy.pair_rank + 1 = next_pair.pair_rank

),

reworded as (

    select
        inspection_key,
        letter_version,
        category,
        old_finding_key,
        new_finding_key,
        similarity
    from greedy
    where is_paired

),

changes as (

    select
        'reworded' as change_type,
        inspection_key,
        letter_version,
        category,
        old_finding_key,
        new_finding_key,
        similarity
    from reworded

    union all

    select
        case unmatched.side when 'new' then 'added' else 'removed' end as change_type,
        unmatched.inspection_key,
        unmatched.letter_version,
        unmatched.category,
        case when unmatched.side = 'old' then unmatched.finding_key end as old_finding_key,
        case when unmatched.side = 'new' then unmatched.finding_key end as new_finding_key,
        null as similarity
    from unmatched
    where not exists (
        select 1 from reworded
        where
            reworded.inspection_key = unmatched.inspection_key
            and reworded.letter_version = unmatched.letter_version
            and unmatched.finding_key
            = case unmatched.side when 'new' then reworded.new_finding_key else reworded.old_finding_key end
    )

),

final as (

    select
        {{ surrogate_key([
            'changes.inspection_key', 'changes.letter_version',
            "coalesce(changes.old_finding_key, '')", "coalesce(changes.new_finding_key, '')",
        ]) }} as finding_change_key,
        {{ surrogate_key(['changes.inspection_key', 'changes.letter_version']) }} as letter_version_key,
        changes.inspection_key,
        changes.letter_version,
        changes.change_type,
        changes.category,
        changes.old_finding_key,
        changes.new_finding_key,
        old_findings.ordinal as old_ordinal,
        new_findings.ordinal as new_ordinal,
        old_findings.finding_text as old_finding_text,
        new_findings.finding_text as new_finding_text,
        round(changes.similarity, 4) as similarity
    from changes
    left join compared as old_findings
        on
            changes.inspection_key = old_findings.inspection_key
            and changes.letter_version = old_findings.letter_version
            and changes.old_finding_key = old_findings.finding_key
            and old_findings.side = 'old'
    left join compared as new_findings
        on
            changes.inspection_key = new_findings.inspection_key
            and changes.letter_version = new_findings.letter_version
            and changes.new_finding_key = new_findings.finding_key
            and new_findings.side = 'new'

)

select * from final
