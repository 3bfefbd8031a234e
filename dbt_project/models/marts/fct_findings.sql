-- One row per finding of an inspection's current letter. finding_key survives corrections
-- (int_findings_keyed): an unchanged finding keeps its key in every version; a reworded one
-- gets a new key here and its old wording stays in fct_finding_versions.
-- Incremental: a build (re)writes the findings of the inspections whose current letter is new,
-- re-parsed or renumbered since the last build (delete+insert on inspection_key, so an
-- inspection's findings are replaced as a whole); the post-hook drops rows left from an older
-- letter, parse or numbering, or of inspections no longer in the warehouse.
-- `dbt build --full-refresh` gives the same table.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='inspection_key',
        on_schema_change='fail',
        post_hook="""
            delete from {{ this }} as built
            where not exists (
                select 1 from {{ ref('fct_inspections') }} as inspections
                where inspections.inspection_key = built.inspection_key
                  and inspections._sha256 = built._sha256
                  and inspections._parsed_at = built._parsed_at
                  and inspections.letter_version = built.letter_version
            )
        """
    )
}}

with

findings as (

    select * from {{ ref('int_findings_keyed') }}

),

inspections as (

    select * from {{ ref('fct_inspections') }}

),

changed_inspections as (

    select * from inspections
    {% if is_incremental() %}
        where not exists (
            select 1
            from {{ this }} as built
            where
                built.inspection_key = inspections.inspection_key
                and built._sha256 = inspections._sha256
                and built._parsed_at = inspections._parsed_at
                and built.letter_version = inspections.letter_version
        )
    {% endif %}

),

final as (

    select
        findings.finding_key,
        changed_inspections.inspection_key,
        changed_inspections.authority_key,
        findings.category,
        findings.heading,
        findings.ordinal,
        findings.finding_text,
        findings.first_letter_version,
        changed_inspections.letter_version,
        changed_inspections._sha256,
        changed_inspections._parsed_at
    from findings
    inner join changed_inspections on findings._sha256 = changed_inspections._sha256

)

select * from final
