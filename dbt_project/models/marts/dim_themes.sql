-- One row per finding theme in the taxonomy (seed finding_themes), with the patterns that
-- assign it.
with

themes as (

    select * from {{ ref('finding_themes') }}

),

final as (

    select
        {{ surrogate_key(['theme_code']) }} as theme_key,
        theme_code,
        theme_name,
        description,
        pattern
    from themes

)

select * from final
