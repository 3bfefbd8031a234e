-- One row per finding per letter version: the history behind fct_findings. A finding reworded
-- or removed by a correction leaves fct_findings but keeps its rows here, under the versions
-- that stated it.
with

findings as (

    select * from {{ ref('int_findings_keyed') }}

),

final as (

    select
        finding_key,
        inspection_key,
        letter_version,
        is_current_version,
        first_letter_version,
        category,
        heading,
        ordinal,
        finding_text,
        _sha256
    from findings

)

select * from final
