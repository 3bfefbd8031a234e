-- Two letters with one natural key (authority + first day of the inspection) are versions of
-- one inspection (a correction is not a failure), unless they conflict: signed by different
-- inspectors AND with no finding in common (normalised text, macro normalise_finding_text).
-- Such a pair is two inspections mixed up or a wrong document: the build fails until the data
-- team quarantines one of them (`ofsted quarantine SHA256 --reason "..."` writes
-- raw.quarantine; the next build leaves the document out). Each pair is named in dbt's output.
{{ config(severity='error', store_failures=true) }}
{% set failing %}
with

letters as (

    select * from {{ ref('int_letters_versioned') }}

),

findings as (

    select * from {{ ref('int_findings_keyed') }}

),

pairs as (

    select
        a.inspection_key,
        a.authority_name as authority_name_as_written,
        a.inspection_start_date,
        a._sha256 as sha256_a,
        a._source_uri as source_uri_a,
        a.inspector_name as inspector_name_a,
        b._sha256 as sha256_b,
        b._source_uri as source_uri_b,
        b.inspector_name as inspector_name_b
    from letters as a
    inner join letters as b
        on
            a.inspection_key = b.inspection_key
            and a._sha256 < b._sha256
    where lower(a.inspector_name) != lower(b.inspector_name)

),

final as (

    select
        pairs.*,
        'Conflicting letters for ' || pairs.authority_name_as_written || ', inspection starting '
        || pairs.inspection_start_date || ': ' || pairs.sha256_a || ' (' || pairs.source_uri_a
        || ', signed ' || pairs.inspector_name_a || ') and ' || pairs.sha256_b || ' ('
        || pairs.source_uri_b || ', signed ' || pairs.inspector_name_b
        || ') have no finding in common; quarantine the wrong one: ofsted quarantine SHA256 --reason "..."'
        as message
    from pairs
    where not exists (
        select 1
        from findings as finding_a
        inner join findings as finding_b
            on finding_a.finding_text_normalised = finding_b.finding_text_normalised
        where
            finding_a._sha256 = pairs.sha256_a
            and finding_b._sha256 = pairs.sha256_b
    )

)

select * from final
{% endset %}
{{ log_rows(ref('int_findings_keyed'), 'select message from (' ~ failing ~ ') order by message') }}
{{ failing }}
