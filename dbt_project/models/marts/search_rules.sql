-- How the search cuts a text into words and ranks findings, as one row: what the index was
-- built with (macros/search_index.sql, vars search_bm25_*), for analysts and for the report's
-- search box, which applies the same rules to a query in the browser.
with

vocabulary as (

    select * from {{ ref('search_vocabulary') }}

),

stop_words as (

    select count(*) as stop_word_count
    from vocabulary
    where is_stop_word

),

final as (

    select
        {{ search_sql_string(search_token_rules().apostrophes) }} as apostrophes_pattern,
        {{ search_sql_string(search_token_rules().separators) }} as separators_pattern,
        cast({{ var('search_bm25_k1') }} as double) as bm25_k1,
        cast({{ var('search_bm25_b') }} as double) as bm25_b,
        cast({{ var('search_weight_decimals') }} as integer) as weight_decimals,
        stop_word_count
    from stop_words

)

select * from final
