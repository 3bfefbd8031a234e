{#- Full-text search over findings without DuckDB's fts extension (it cannot be downloaded
    here): a token index built by dbt (model finding_terms) and BM25 ranking in SQL (the DuckDB
    table macro marts.search_findings, created by finding_terms' post-hook).

    One definition of how text becomes terms, used for the findings (finding_terms) and for a
    query (search_findings): lower case, apostrophes dropped, split on anything that is not a
    letter or digit, stop words dropped, then the Porter stemmer (M.F. Porter, "An algorithm
    for suffix stripping", 1980), written here as a chain of CTEs, one per step of the paper.
    "thresholds" and "threshold" both become "threshold"; "referrals" "referr". -#}

{% macro search_stop_words() -%}
    {{ return(['a', 'an', 'and', 'are', 'as', 'at', 'be', 'been', 'but', 'by', 'for', 'from',
               'has', 'have', 'in', 'into', 'is', 'it', 'its', 'of', 'on', 'or', 'that', 'the',
               'their', 'there', 'these', 'this', 'to', 'was', 'were', 'which', 'with']) }}
{%- endmacro %}

{#- The words of a text column as a list (before stop words and stemming). -#}
{% macro search_words(text_expr) -%}
    regexp_split_to_array(regexp_replace(lower({{ text_expr }}), '[''’]', '', 'g'), '[^a-z0-9]+')
{%- endmacro %}

{#- SQL condition: `word_expr` is worth indexing (not empty, not a stop word). -#}
{% macro search_is_term(word_expr) -%}
    ({{ word_expr }} != '' and {{ word_expr }} not in (
        {%- for w in search_stop_words() %}'{{ w }}'{% if not loop.last %}, {% endif %}{% endfor -%}
    ))
{%- endmacro %}

{#- Porter's helpers on a word expression. The consonant/vowel form: a e i o u are vowels, y
    is a vowel after a consonant; m = the number of vowel-run + consonant-run pairs. -#}
{% macro _porter_cv(expr) -%}
    regexp_replace(regexp_replace(regexp_replace({{ expr }}, '[aeiou]', 'V', 'g'), '([^V])y', '\1V', 'g'), '[^V]', 'C', 'g')
{%- endmacro %}
{% macro _porter_m(expr) -%}
    len(regexp_extract_all({{ _porter_cv(expr) }}, 'V+C+'))
{%- endmacro %}
{% macro _porter_has_vowel(expr) -%}
    contains({{ _porter_cv(expr) }}, 'V')
{%- endmacro %}
{% macro _porter_cvc(expr) -%}
    (regexp_matches({{ _porter_cv(expr) }}, 'CVC$') and not regexp_matches({{ expr }}, '[wxy]$'))
{%- endmacro %}
{% macro _porter_double_consonant(expr) -%}
    (length({{ expr }}) >= 2 and right({{ expr }}, 1) = substr({{ expr }}, length({{ expr }}) - 1, 1)
     and right({{ _porter_cv(expr) }}, 1) = 'C')
{%- endmacro %}
{% macro _porter_cut(expr, n) -%}
    substr({{ expr }}, 1, length({{ expr }}) - {{ n }})
{%- endmacro %}

{#- One suffix step: the first (longest) matching suffix is replaced when the rest has m > min_m
    (and, for step 4's "ion", ends in s or t); otherwise the word is unchanged. -#}
{% macro _porter_suffix_step(rules, min_m) -%}
    case
    {%- for suffix, replacement in rules %}
        when ends_with(w, '{{ suffix }}') then
            case
                when {{ _porter_m(_porter_cut('w', suffix | length)) }} > {{ min_m }}
                {%- if suffix == 'ion' %}
                    and regexp_matches({{ _porter_cut('w', 3) }}, '[st]$')
                {%- endif %}
                    then {{ _porter_cut('w', suffix | length) }} || '{{ replacement }}'
                else w
            end
    {%- endfor %}
        else w
    end
{%- endmacro %}

{#- CTEs `<prefix>_1a` ... `<prefix>_stemmed` (columns: word, stem) over the distinct words in
    column `word` of the relation or CTE `words`. Place after other CTEs (ends without a
    comma). -#}
{% macro porter_stem_ctes(words, prefix) -%}
{%- set step2 = [('ational', 'ate'), ('iveness', 'ive'), ('fulness', 'ful'), ('ousness', 'ous'),
                 ('ization', 'ize'), ('tional', 'tion'), ('biliti', 'ble'), ('entli', 'ent'),
                 ('ousli', 'ous'), ('ation', 'ate'), ('alism', 'al'), ('aliti', 'al'),
                 ('iviti', 'ive'), ('enci', 'ence'), ('anci', 'ance'), ('izer', 'ize'),
                 ('abli', 'able'), ('alli', 'al'), ('ator', 'ate'), ('eli', 'e')] -%}
{%- set step3 = [('icate', 'ic'), ('ative', ''), ('alize', 'al'), ('iciti', 'ic'),
                 ('ical', 'ic'), ('ness', ''), ('ful', '')] -%}
{%- set step4 = [('ement', ''), ('ance', ''), ('ence', ''), ('able', ''), ('ible', ''),
                 ('ment', ''), ('ant', ''), ('ent', ''), ('ion', ''), ('ism', ''), ('ate', ''),
                 ('iti', ''), ('ous', ''), ('ive', ''), ('ize', ''), ('al', ''), ('er', ''),
                 ('ic', ''), ('ou', '')] -%}
{{ prefix }}_words as (
    select distinct word, word as w from {{ words }}
),
{{ prefix }}_1a as (
    select word,
        case
            when ends_with(w, 'sses') then {{ _porter_cut('w', 2) }}
            when ends_with(w, 'ies') then {{ _porter_cut('w', 2) }}
            when ends_with(w, 'ss') then w
            when ends_with(w, 's') then {{ _porter_cut('w', 1) }}
            else w
        end as w
    from {{ prefix }}_words
),
{{ prefix }}_1b_cut as (
    select word,
        case
            when ends_with(w, 'eed') then
                case when {{ _porter_m(_porter_cut('w', 3)) }} > 0 then {{ _porter_cut('w', 1) }} else w end
            when ends_with(w, 'ed') and {{ _porter_has_vowel(_porter_cut('w', 2)) }} then {{ _porter_cut('w', 2) }}
            when ends_with(w, 'ing') and {{ _porter_has_vowel(_porter_cut('w', 3)) }} then {{ _porter_cut('w', 3) }}
            else w
        end as w,
        not ends_with(w, 'eed') and (
            (ends_with(w, 'ed') and {{ _porter_has_vowel(_porter_cut('w', 2)) }})
            or (ends_with(w, 'ing') and {{ _porter_has_vowel(_porter_cut('w', 3)) }})
        ) as was_cut
    from {{ prefix }}_1a
),
{{ prefix }}_1b as (
    select word,
        case
            when not was_cut then w
            when ends_with(w, 'at') or ends_with(w, 'bl') or ends_with(w, 'iz') then w || 'e'
            when {{ _porter_double_consonant('w') }} and not regexp_matches(w, '[lsz]$') then {{ _porter_cut('w', 1) }}
            when {{ _porter_m('w') }} = 1 and {{ _porter_cvc('w') }} then w || 'e'
            else w
        end as w
    from {{ prefix }}_1b_cut
),
{{ prefix }}_1c as (
    select word,
        case
            when ends_with(w, 'y') and {{ _porter_has_vowel(_porter_cut('w', 1)) }} then {{ _porter_cut('w', 1) }} || 'i'
            else w
        end as w
    from {{ prefix }}_1b
),
{{ prefix }}_2 as (
    select word, {{ _porter_suffix_step(step2, 0) }} as w from {{ prefix }}_1c
),
{{ prefix }}_3 as (
    select word, {{ _porter_suffix_step(step3, 0) }} as w from {{ prefix }}_2
),
{{ prefix }}_4 as (
    select word, {{ _porter_suffix_step(step4, 1) }} as w from {{ prefix }}_3
),
{{ prefix }}_5a as (
    select word,
        case
            when ends_with(w, 'e') and (
                {{ _porter_m(_porter_cut('w', 1)) }} > 1
                or ({{ _porter_m(_porter_cut('w', 1)) }} = 1 and not {{ _porter_cvc(_porter_cut('w', 1)) }})
            ) then {{ _porter_cut('w', 1) }}
            else w
        end as w
    from {{ prefix }}_4
),
{{ prefix }}_stemmed as (
    select word,
        case
            when length(word) <= 2 then word
            when {{ _porter_m('w') }} > 1 and ends_with(w, 'll') then {{ _porter_cut('w', 1) }}
            else w
        end as stem
    from {{ prefix }}_5a
)
{%- endmacro %}

{#- The statement that (re)creates the table macro <schema>.search_terms(query_text): the terms
    a text becomes (columns word, term), as the index makes them. -#}
{% macro create_search_terms_macro(schema) -%}
create or replace macro {{ schema }}.search_terms(query_text) as table
with
input_words as (
    select distinct unnest({{ search_words('query_text') }}) as word
),
input_terms as (
    select word from input_words where {{ search_is_term('word') }}
),
{{ porter_stem_ctes('input_terms', 'query_stem') }}
select word, stem as term from query_stem_stemmed
{%- endmacro %}

{#- The statement that (re)creates the table macro <schema>.search_findings(query_text): the
    findings ranked by BM25 (k1, b from vars search_bm25_k1 / search_bm25_b) for the query's
    terms (search_terms), best first; a finding matches when it has at least one of them.
    Columns: finding_key, score, matched_terms, and the findings_wide columns an analyst reads. -#}
{% macro create_search_findings_macro(terms_relation, findings_relation) -%}
{#- schema-qualified only: the published copy of the file has another catalog name -#}
{%- set schema = terms_relation.schema -%}
{%- set terms = schema ~ '.' ~ terms_relation.identifier -%}
{%- set findings = findings_relation.schema ~ '.' ~ findings_relation.identifier -%}
create or replace macro {{ schema }}.search_findings(query_text) as table
with
query_terms as (
    select distinct term from {{ schema }}.search_terms(query_text)
),
collection as (
    select
        count(distinct finding_key) as document_count,
        sum(term_frequency) / greatest(count(distinct finding_key), 1) as average_length
    from {{ terms }}
),
postings as (
    select terms.term, terms.finding_key, terms.term_frequency, terms.document_length
    from {{ terms }} as terms
    where terms.term in (select query_terms.term from query_terms)
),
document_frequency as (
    select term, count(*) as df from postings group by term
),
scored as (
    select
        postings.finding_key,
        sum(
            ln(1 + (collection.document_count - document_frequency.df + 0.5) / (document_frequency.df + 0.5))
            * postings.term_frequency * ({{ var('search_bm25_k1') }} + 1)
            / (postings.term_frequency + {{ var('search_bm25_k1') }} * (
                1 - {{ var('search_bm25_b') }}
                + {{ var('search_bm25_b') }} * postings.document_length / collection.average_length))
        ) as score,
        list(postings.term order by postings.term) as matched_terms
    from postings
    inner join document_frequency on postings.term = document_frequency.term
    cross join collection
    group by postings.finding_key
)
select
    scored.finding_key,
    scored.score,
    scored.matched_terms,
    findings.authority_name_as_written,
    findings.authority_name,
    findings.gss_code,
    findings.inspection_start_date,
    findings.letter_date,
    findings.category,
    findings.themes,
    findings.finding_text,
    findings.source_uri,
    findings.inspection_key
from scored
inner join {{ findings }} as findings on scored.finding_key = findings.finding_key
order by scored.score desc, scored.finding_key
{%- endmacro %}
