-- One row per inspector who signed a letter in the warehouse (every version of an inspection's
-- letters counts; names compared case- and spacing-insensitively; the spelling shown is the
-- most frequent one).
with

letters as (

    select * from {{ ref('int_letters_versioned') }}

),

signed as (

    select
        lower(inspector_name) as inspector_id,
        inspector_name,
        letter_date
    from letters
    where inspector_name is not null

),

final as (

    select
        {{ surrogate_key(['inspector_id']) }} as inspector_key,
        mode(inspector_name order by inspector_name) as inspector_name,
        count(*) as letter_count,
        min(letter_date) as first_letter_date,
        max(letter_date) as last_letter_date
    from signed
    group by inspector_id

)

select * from final
