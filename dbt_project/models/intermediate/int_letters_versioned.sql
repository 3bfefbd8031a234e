-- Every letter that counts, as a version of the inspection it describes.
-- An inspection is an identity: its natural key is the authority (authority_id: the GSS code,
-- or the normalised name as written when unmatched) and the inspection's first day, and
-- inspection_key is derived from that alone (never from a file or its bytes). Each letter about
-- it is a version, numbered by letter date (an undated letter before dated ones), then by when
-- it was fetched, then by sha256; the last version is the current one. Left out:
-- - letters whose latest quarantine-log action (raw.quarantine) is 'quarantine';
-- - letters withdrawn at their URI: replaced there (_superseded_by) by a letter about another
--   inspection. A letter replaced at its URI by another version of the same inspection (a
--   correction under the same file name) stays, as an earlier version.
with

letters as (

    select * from {{ ref('int_letters_matched') }}

),

quarantine_log as (

    select * from {{ ref('stg_raw__quarantine') }}

),

latest_actions as (

    select
        _sha256,
        action,
        row_number() over (
            partition by _sha256
            order by acted_at desc, (action = 'quarantine') desc
        ) as action_rank
    from quarantine_log

),

quarantined as (

    select _sha256 from latest_actions
    where action_rank = 1 and action = 'quarantine'

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
        first_value(letter_date) over (
            partition by inspection_key order by letter_version
        ) as first_published_date
    from numbered

)

select * from final  -- noqa: AM04
