-- One row per person a current letter was copied to.
with

copy_recipients as (

    select * from {{ source('raw', 'copy_recipients') }}

),

current_letters as (

    select _sha256 from {{ source('raw', 'letters') }}
    where _superseded_by is null

),

final as (

    select
        _sha256,
        ordinal,
        trim(regexp_replace(name, '\s+', ' ', 'g')) as recipient_name,
        nullif(trim(regexp_replace(role, '\s+', ' ', 'g')), '') as recipient_role
    from copy_recipients
    where _sha256 in (select current_letters._sha256 from current_letters)

)

select * from final
