-- One row per document quarantined now: raw.quarantined_documents, the one definition of the
-- quarantine state (ingest/raw/schema.sql: the latest action per document, a quarantine
-- winning a tie with a release), which the loader, `ofsted status` and GX read too.
with

quarantined_documents as (

    select * from {{ source('raw', 'quarantined_documents') }}

),

final as (

    select
        sha256 as _sha256,
        source_uri,
        trim(reason) as reason,
        by_user,
        acted_at as quarantined_at
    from quarantined_documents

)

select * from final
