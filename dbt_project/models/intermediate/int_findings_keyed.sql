-- Every finding of every letter version (int_letters_versioned), with a key that survives
-- corrections: finding_key = md5(inspection_key, category, normalised text, occurrence), the
-- occurrence numbering repeats of one normalised text within one section of one letter (1, 2..
-- by ordinal). An unchanged finding has the same key in every version of the letter; a
-- reworded one (any change to its normalised text, macro normalise_finding_text) or one moved
-- to another section gets a new key. first_letter_version: the version it first appeared in.
with

findings as (

    select * from {{ ref('stg_raw__findings') }}

),

letters as (

    select * from {{ ref('int_letters_versioned') }}

),

occurrences as (

    select
        letters.inspection_key,
        letters.letter_version,
        letters.is_current_version,
        letters._parsed_at,
        findings.*,
        row_number() over (
            partition by findings._sha256, findings.category, findings.finding_text_normalised
            order by findings.ordinal
        ) as occurrence
    from findings
    inner join letters on findings._sha256 = letters._sha256

),

keyed as (

    select
        {{ surrogate_key(['inspection_key', 'category', 'finding_text_normalised', 'occurrence']) }}
            as finding_key,
        *
    from occurrences

),

final as (

    select
        finding_key,
        inspection_key,
        letter_version,
        is_current_version,
        min(letter_version) over (partition by finding_key) as first_letter_version,
        category,
        heading,
        ordinal,
        finding_text,
        finding_text_normalised,
        occurrence,
        _sha256,
        _parsed_at
    from keyed

)

select * from final
