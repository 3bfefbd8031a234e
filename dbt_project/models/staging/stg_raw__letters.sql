-- One row per current letter: raw.letters without the versions superseded by a later fetch of
-- the same source URI, names with their spacing tidied.
with

letters as (

    select * from {{ source('raw', 'letters') }}

),

final as (

    select
        _sha256,
        _content_hash,
        _source_uri,
        _archive_path,
        _fetched_at,
        _parsed_at,
        _parser_version,
        source_format,
        letter_date,
        nullif(trim(regexp_replace(recipient_name, '\s+', ' ', 'g')), '') as recipient_name,
        nullif(trim(regexp_replace(recipient_title, '\s+', ' ', 'g')), '') as recipient_title,
        trim(regexp_replace(authority_name, '\s+', ' ', 'g')) as authority_name,
        inspection_start_date,
        inspection_end_date,
        statutory_basis,
        previous_inspection,
        summary,
        nullif(trim(regexp_replace(inspector_name, '\s+', ' ', 'g')), '') as inspector_name,
        finding_count
    from letters
    where _superseded_by is null

)

select * from final
