-- One row per letter of raw.letters (every version, quarantined ones too: which letters count
-- is decided in int_letters_versioned), names with their spacing tidied.
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
        _superseded_by,
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

)

select * from final
