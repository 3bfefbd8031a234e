-- One row per finding. Incremental: a build (re)writes the findings of the letters that are new,
-- re-parsed, or matched to a different authority since the last build (delete+insert on
-- inspection_key, so a letter's findings are replaced as a whole); the post-hook drops rows left
-- from an older parse or match, or of letters no longer loaded. `dbt build --full-refresh`
-- gives the same table.
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
                  and inspections._parsed_at = built._parsed_at
                  and inspections.authority_key is not distinct from built.authority_key
            )
        """
    )
}}

with

findings as (

    select * from {{ ref('stg_raw__findings') }}

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
                built._sha256 = inspections._sha256
                and built._parsed_at = inspections._parsed_at
                and built.authority_key is not distinct from inspections.authority_key
        )
    {% endif %}

),

final as (

    select
        {{ surrogate_key(['findings._sha256', 'findings.category', 'findings.ordinal']) }} as finding_key,
        changed_inspections.inspection_key,
        changed_inspections.authority_key,
        findings.category,
        findings.heading,
        findings.ordinal,
        findings.finding_text,
        changed_inspections._sha256,
        changed_inspections._parsed_at
    from findings
    inner join changed_inspections on findings._sha256 = changed_inspections._sha256

)

select * from final
