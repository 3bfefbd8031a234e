-- The full-text index of findings: one row per (term, finding) with the term's frequency in the
-- finding and its BM25 weight there (a finding's score for a query is the sum of its matched
-- terms' weights). Terms come from search_vocabulary (the finding's words, stop words dropped,
-- Porter-stemmed: macros/search_index.sql). The post-hooks (re)create the table macros
-- marts.search_words(text), marts.porter_stems(text), marts.search_terms(text) (a text's words and their terms) and
-- marts.search_findings(query_text, max_results, any_word) (findings ranked by BM25), which
-- `ofsted search`, analysts' SQL and (through the weights) the report's search box use.
-- Rebuilt in full each night.
{{
    config(
        post_hook=[
            "{{ create_search_words_macro(this.schema) }}",
            "{{ create_porter_stems_macro(this.schema) }}",
            "{{ create_search_terms_macro(ref('search_vocabulary')) }}",
            "{{ create_search_findings_macro(this, ref('findings_wide')) }}",
        ]
    )
}}

with

findings as (

    select * from {{ ref('findings_wide') }}

),

vocabulary as (

    select * from {{ ref('search_vocabulary') }}

),

words as (

    select
        finding_key,
        unnest({{ search_words('finding_text') }}) as word
    from findings

),

terms as (

    select
        words.finding_key,
        vocabulary.term
    from words
    inner join vocabulary on words.word = vocabulary.word
    where not vocabulary.is_stop_word

),

term_frequencies as (

    select
        term,
        finding_key,
        cast(count(*) as integer) as term_frequency
    from terms
    group by term, finding_key

),

document_lengths as (

    select
        finding_key,
        sum(term_frequency) as document_length
    from term_frequencies
    group by finding_key

),

document_frequencies as (

    select
        term,
        count(*) as document_frequency
    from term_frequencies
    group by term

),

collection as (

    -- every finding is a document (one whose words are all stop words has length 0)
    select
        (select count(*) from findings) as document_count,
        (select sum(term_frequency) from term_frequencies)
        / greatest((select count(*) from findings), 1) as average_length

),

final as (

    select
        term_frequencies.term,
        term_frequencies.finding_key,
        term_frequencies.term_frequency,
        {{ search_bm25_weight(
            'collection.document_count', 'document_frequencies.document_frequency',
            'term_frequencies.term_frequency', 'document_lengths.document_length',
            'collection.average_length') }} as bm25_weight
    from term_frequencies
    inner join document_frequencies on term_frequencies.term = document_frequencies.term
    inner join document_lengths on term_frequencies.finding_key = document_lengths.finding_key
    cross join collection

)

select * from final
