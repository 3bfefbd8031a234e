-- One row per person a letter was copied to.
with

copy_recipients as (

    select * from {{ source('raw', 'copy_recipients') }}

),

final as (

    select
        _sha256,
        ordinal,
        trim(regexp_replace(name, '\s+', ' ', 'g')) as recipient_name,
        nullif(trim(regexp_replace(role, '\s+', ' ', 'g')), '') as recipient_role
    from copy_recipients

)

select * from final
