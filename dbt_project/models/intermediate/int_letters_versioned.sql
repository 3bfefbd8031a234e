-- Every letter that counts, as a version of the inspection it describes: the one definition
-- of an inspection's identity, its versions, its first and its current letter. Every check that
-- needs them reads this model (or the marts built on it), never recomputes them.
-- An inspection is an identity: its natural key is the authority (authority_id: the GSS code,
-- or the normalised name as written when unmatched) and the inspection's first day, and
-- inspection_key is derived from that alone (never from a file, its name or its bytes). Each
-- letter about it is a version, numbered by letter date, then by when it was fetched, then by
-- sha256; the last version is the current one. An undated letter (the parser found no date)
-- comes BEFORE every dated letter of its inspection (among undated ones, in the order
-- fetched): nothing shows it is later than a dated one, so a dated letter is preferred as the
-- current version. first_published_date is the earliest letter date of the inspection (the
-- date of its first dated letter): the 120-day rule (assert_letter_follows_inspection) judges
-- it, whatever file name or date a later version has. Left out:
-- - documents quarantined now (stg_raw__quarantined_documents: the one quarantine rule);
-- - letters withdrawn at their URI: replaced there (_superseded_by) by a letter about another
--   inspection. A letter replaced at its URI by another version of the same inspection (a
--   correction under the same file name) stays, as an earlier version.
with

letters as (

    select * from {{ ref('int_letters_matched') }}

),

quarantined as (

    select * from {{ ref('stg_raw__quarantined_documents') }}

),

identified as (

    select
        {{ surrogate_key(['letters.authority_id', 'letters.inspection_start_date']) }} as inspection_key,
        letters.*
    from letters
    where letters._sha256 not in (select quarantined._sha256 from quarantined)

),

withdrawn as (

    select replaced._sha256
    from identified as replaced
    inner join identified as replacement on replaced._superseded_by = replacement._sha256
    where replaced.inspection_key != replacement.inspection_key

),

numbered as (

    select
        *,
        row_number() over (
            partition by inspection_key
            order by letter_date asc nulls first, _fetched_at asc, _sha256 asc
        ) as letter_version,
        count(*) over (partition by inspection_key) as version_count
    from identified
    where _sha256 not in (select withdrawn._sha256 from withdrawn)

),

final as (

    select
        *,
        letter_version = version_count as is_current_version,
        min(letter_date) over (partition by inspection_key) as first_published_date
    from numbered

)

select * from final  -- noqa: AM04
