-- The search vocabulary: every word a search understands, with its term (Porter stem), and the
-- stop words (term null). The words are those of the findings and their common inflections
-- (a finding word or its stem plus a suffix of search_inflection_suffixes, kept when Porter
-- stems it to a term of the findings: "thresholds" for a collection that only says
-- "threshold"). The stemmer runs here and nowhere else: the index (finding_terms), the query
-- macros (search_terms, search_findings) and the report's search box all read a word's term
-- from this table (macros/search_index.sql); a word that is not here matches nothing.
with

findings as (

    select * from {{ ref('findings_wide') }}

),

words as (

    select distinct unnest({{ search_words('finding_text') }}) as word
    from findings

),

stop_words as (

    select unnest([
        {%- for w in search_stop_words() %}
            '{{ w }}'{{ ',' if not loop.last }}
        {%- endfor %}
    ]) as word

),

finding_words as (

    select words.word
    from words
    where words.word != '' and words.word not in (select stop_words.word from stop_words)

),

{{ porter_stem_ctes('finding_words', 'finding_stem') }},

suffixes as (

    select unnest([
        {%- for s in search_inflection_suffixes() %}
            '{{ s }}'{{ ',' if not loop.last }}
        {%- endfor %}
    ]) as ending

),

bases as (

    select word as base from finding_stem_stemmed
    union
    select stem as base from finding_stem_stemmed
    union
    -- a doubled last consonant: "plan" -> "plann" (+ "ing", "ed", "er")
    select stem || right(stem, 1) as base from finding_stem_stemmed
    where regexp_matches(stem, '[^aeiouy][aeiou][b-df-hj-np-tv-z]$')

),

candidates as (

    select distinct bases.base || suffixes.ending as word
    from bases
    cross join suffixes

),

inflections as (

    select candidates.word
    from candidates
    where
        candidates.word not in (select finding_words.word from finding_words)
        and candidates.word not in (select stop_words.word from stop_words)

),

{{ porter_stem_ctes('inflections', 'inflection_stem') }},

final as (

    select
        word,
        stem as term,
        false as is_stop_word,
        true as is_in_findings
    from finding_stem_stemmed

    union all

    select
        word,
        stem as term,
        false as is_stop_word,
        false as is_in_findings
    from inflection_stem_stemmed
    where stem in (select finding_stem_stemmed.stem from finding_stem_stemmed)

    union all

    select
        word,
        null as term,
        true as is_stop_word,
        false as is_in_findings
    from stop_words

)

select * from final
