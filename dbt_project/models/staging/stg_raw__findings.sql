-- One row per finding of a current letter (not superseded by a later version).
with

findings as (

    select * from {{ source('raw', 'findings') }}

),

current_letters as (

    select _sha256 from {{ source('raw', 'letters') }}
    where _superseded_by is null

),

final as (

    select
        _sha256,
        category,
        trim(heading) as heading,
        ordinal,
        trim(regexp_replace(finding_text, '\s+', ' ', 'g')) as finding_text
    from findings
    where _sha256 in (select current_letters._sha256 from current_letters)

)

select * from final
