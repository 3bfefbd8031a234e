-- One row per finding of a letter.
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
        trim(regexp_replace(finding_text, '\s+', ' ', 'g')) as finding_text
    from findings

)

select * from final
