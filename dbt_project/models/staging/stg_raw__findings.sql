-- One row per finding of a letter (of every letter in raw.letters), its text with whitespace
-- normalised and, for recognising the same finding across versions of a letter, its
-- normalised text (macro normalise_finding_text).
with

findings as (

    select * from {{ source('raw', 'findings') }}

),

final as (

    select
        _sha256,
        category,
        trim(heading) as heading,
        ordinal,
        trim(regexp_replace(finding_text, '\s+', ' ', 'g')) as finding_text,
        {{ normalise_finding_text('finding_text') }} as finding_text_normalised
    from findings

)

select * from final
