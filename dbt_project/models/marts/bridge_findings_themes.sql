-- One row per (finding, theme) a current finding (fct_findings) is about. Incremental like
-- fct_findings: a build (re)writes the theme rows of the inspections whose current letter is
-- new or re-parsed, and of every inspection when the theme patterns have changed (each row
-- carries a hash of the taxonomy it was assigned with); the post-hook drops rows left from an
-- older letter, parse or taxonomy, or of inspections no longer in the warehouse.
-- `dbt build --full-refresh` gives the same table.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='inspection_key',
        on_schema_change='fail',
        post_hook="""
            delete from {{ this }} as built
            where built._themes_hash != {{ finding_themes_hash() }}
               or not exists (
                   select 1 from {{ ref('fct_inspections') }} as inspections
                   where inspections.inspection_key = built.inspection_key
                     and inspections._sha256 = built._sha256
                     and inspections._parsed_at = built._parsed_at
               )
        """
    )
}}

with

findings as (

    select * from {{ ref('int_findings_keyed') }}
    where is_current_version

),

inspections as (

    select * from {{ ref('fct_inspections') }}

),

themes as (

    select * from {{ ref('dim_themes') }}

),

taxonomy as (

    select {{ finding_themes_hash() }} as _themes_hash

),

changed_inspections as (

    select
        inspections.inspection_key,
        inspections._sha256,
        inspections._parsed_at
    from inspections
    {% if is_incremental() %}
        where not exists (
            select 1
            from {{ this }} as built
            where
                built.inspection_key = inspections.inspection_key
                and built._sha256 = inspections._sha256
                and built._parsed_at = inspections._parsed_at
                and built._themes_hash = (select taxonomy._themes_hash from taxonomy)
        )
    {% endif %}

),

changed_findings as (

    -- the regular expressions only run over these (all findings on a full build)
    select findings.*
    from findings
    where findings._sha256 in (select changed_inspections._sha256 from changed_inspections)

),

themed as (

    {{ assign_themes('changed_findings') }}

),

final as (

    select
        themed.finding_key,
        themes.theme_key,
        themed.theme_code,
        changed_inspections.inspection_key,
        changed_inspections._sha256,
        changed_inspections._parsed_at,
        taxonomy._themes_hash
    from themed
    inner join changed_inspections on themed._sha256 = changed_inspections._sha256
    inner join themes on themed.theme_code = themes.theme_code
    cross join taxonomy

)

select * from final
