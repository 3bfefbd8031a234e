-- The full-text index of findings: one row per (term, finding) with the term's frequency in the
-- finding and the finding's length in terms. Terms are the finding's words, lower-cased, stop
-- words dropped, Porter-stemmed (macros/search_index.sql). Sorted by term, so a lookup reads
-- few row groups. The post-hooks (re)create the table macros marts.search_terms(text) (the
-- terms a text becomes) and marts.search_findings(query_text) (findings ranked by BM25), which
-- `ofsted search` and analysts' SQL call. Rebuilt in full each night.
{{
    config(
        post_hook=[
            "{{ create_search_terms_macro(this.schema) }}",
            "{{ create_search_findings_macro(this, ref('findings_wide')) }}",
        ]
    )
}}

with

findings as (

    select * from {{ ref('findings_wide') }}

),

words as (

    select
        finding_key,
        unnest({{ search_words('finding_text') }}) as word
    from findings

),

indexed_words as (

    select
        finding_key,
        word
    from words
    where {{ search_is_term('word') }}

),

{{ porter_stem_ctes('indexed_words', 'finding_stem') }},

terms as (

    select
        indexed_words.finding_key,
        finding_stem_stemmed.stem as term
    from indexed_words
    inner join finding_stem_stemmed on indexed_words.word = finding_stem_stemmed.word

),

final as (

    select
        term,
        finding_key,
        cast(count(*) as integer) as term_frequency,
        cast(sum(count(*)) over (partition by finding_key) as integer) as document_length
    from terms
    group by term, finding_key
    order by term, finding_key

)

select * from final
