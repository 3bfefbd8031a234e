-- raw.letters.finding_count (what the parser counted) equals the finding rows loaded for it.
with

letters as (

    select * from {{ ref('stg_raw__letters') }}

),

findings as (

    select * from {{ ref('stg_raw__findings') }}

),

loaded as (

    select
        _sha256,
        count(*) as finding_rows
    from findings
    group by _sha256

),

final as (

    select
        letters._sha256,
        letters.authority_name,
        letters.finding_count,
        coalesce(loaded.finding_rows, 0) as finding_rows
    from letters
    left join loaded on letters._sha256 = loaded._sha256
    where letters.finding_count != coalesce(loaded.finding_rows, 0)

)

select * from final
