-- One row per action of the data team's quarantine log (raw.quarantine), as logged.
with

quarantine as (

    select * from {{ source('raw', 'quarantine') }}

),

final as (

    select
        sha256 as _sha256,
        source_uri,
        trim(reason) as reason,
        action,
        by_user,
        acted_at
    from quarantine

)

select * from final
