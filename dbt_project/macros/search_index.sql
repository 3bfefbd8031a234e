{#- Full-text search over findings without DuckDB's fts extension (it cannot be downloaded
    here). Everything about how text becomes terms and how findings are ranked is defined in
    this file, once; every reader takes the result from the warehouse:

    - model search_vocabulary: every distinct word of the findings with its Porter stem (the
      stemmer runs here, at build time, and nowhere else), and the stop words (term null);
    - model finding_terms: one row per (term, finding) with its BM25 weight;
    - table macros (created by finding_terms' post-hooks, stored in the warehouse file):
      search_words(text) (a text's words, a list), search_terms(text) (the words of a text
      and their terms, read from the vocabulary),
      search_findings(text, max_results, any_word) (ranked findings), porter_stems(text)
      (the stemmer itself on any text, for checking it);
    - the report's search box reads search_vocabulary and finding_terms' weights
      (ingest/report/search.py), and the token rules from model search_rules, so the browser
      cuts, stems and ranks a query exactly as SQL does.

    A text becomes words: lower case, apostrophes dropped, split on anything that is not a
    letter or digit. A word is a stop word or, through the vocabulary, a term: its Porter stem
    (M.F. Porter, "An algorithm for suffix stripping", 1980), written here as a chain of CTEs,
    one per step of the paper ("thresholds" and "threshold" both become "threshold"; "referrals"
    "referr"). A query word that occurs in no finding has no term and matches nothing. -#}

{#- The token rules, as DuckDB (RE2) regular expressions that JavaScript reads the same way. -#}
{% macro search_token_rules() -%}
    {{ return({'apostrophes': "['’]", 'separators': '[^a-z0-9]+'}) }}
{%- endmacro %}

{% macro search_stop_words() -%}
    {{ return(['a', 'an', 'and', 'are', 'as', 'at', 'be', 'been', 'but', 'by', 'for', 'from',
               'has', 'have', 'in', 'into', 'is', 'it', 'its', 'of', 'on', 'or', 'that', 'the',
               'their', 'there', 'these', 'this', 'to', 'was', 'were', 'which', 'with']) }}
{%- endmacro %}

{#- What search_vocabulary adds to a finding's word or stem to find the inflections a query may
    use that the findings do not ("thresholds", "supervising", "agencies"). -#}
{% macro search_inflection_suffixes() -%}
    {{ return(['s', 'es', 'ies', 'd', 'ed', 'ied', 'ing', 'ings', 'e', 'er', 'ers', 'ly', 'al', 'ally',
               'ion', 'ions', 'ation', 'ations', 'ment', 'ments', 'ness', 'ive', 'ity', 'ities', 'ence',
               'ance', 'able', 'ful', 'ise', 'ised', 'ising', 'isation', 'ize', 'ized', 'izing', 'ization']) }}
{%- endmacro %}

{#- The words of a text column as a list (before stop words and stemming). -#}
{% macro search_words(text_expr) -%}
    {%- set rules = search_token_rules() -%}
    regexp_split_to_array(regexp_replace(lower({{ text_expr }}), {{ search_sql_string(rules.apostrophes) }}, '', 'g'),
                          {{ search_sql_string(rules.separators) }})
{%- endmacro %}

{% macro search_sql_string(text) -%}
    '{{ text | replace("'", "''") }}'
{%- endmacro %}

{#- Porter's helpers. Each step's CTE carries the word so far (`w`) and its consonant/vowel
    form (`cv`, computed once per step): a e i o u are vowels, y is a vowel after a consonant.
    The form of a prefix is the prefix of the form, so "the stem without its last n letters"
    is `substr(cv, 1, length(cv) - n)`. m = the number of vowel-run + consonant-run pairs. -#}
{% macro _porter_cv(expr) -%}
    regexp_replace(regexp_replace(regexp_replace({{ expr }}, '[aeiou]', 'V', 'g'), '([^V])y', '\1V', 'g'), '[^V]', 'C', 'g')
{%- endmacro %}
{% macro _porter_cut(expr, n) -%}
    {%- if n == 0 -%}{{ expr }}{%- else -%}substr({{ expr }}, 1, length({{ expr }}) - {{ n }}){%- endif -%}
{%- endmacro %}
{#- m, vowel, cvc and double consonant of w without its last n letters -#}
{% macro _porter_m(n=0) -%}
    len(regexp_extract_all({{ _porter_cut('cv', n) }}, 'V+C+'))
{%- endmacro %}
{% macro _porter_has_vowel(n=0) -%}
    contains({{ _porter_cut('cv', n) }}, 'V')
{%- endmacro %}
{% macro _porter_cvc(n=0) -%}
    (regexp_matches({{ _porter_cut('cv', n) }}, 'CVC$') and not regexp_matches({{ _porter_cut('w', n) }}, '[wxy]$'))
{%- endmacro %}
{% macro _porter_double_consonant() -%}
    (length(w) >= 2 and right(w, 1) = substr(w, length(w) - 1, 1) and right(cv, 1) = 'C')
{%- endmacro %}

{#- A step's input: the previous step's words with their consonant/vowel form. -#}
{% macro _porter_input(previous) -%}
    (select word, w, {{ _porter_cv('w') }} as cv from {{ previous }})
{%- endmacro %}

{#- One suffix step: the first (longest) matching suffix is replaced when the rest has m > min_m
    (and, for step 4's "ion", ends in s or t); otherwise the word is unchanged. -#}
{% macro _porter_suffix_step(rules, min_m) -%}
    case
    {%- for suffix, replacement in rules %}
        when ends_with(w, '{{ suffix }}') then
            case
                when {{ _porter_m(suffix | length) }} > {{ min_m }}
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

{#- CTEs `<prefix>_words`, `<prefix>_1a` ... `<prefix>_stemmed` (columns: word, stem) over the
    distinct words in column `word` of the relation or CTE `words`. Place after other CTEs
    (ends without a comma). -#}
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
                case when {{ _porter_m(3) }} > 0 then {{ _porter_cut('w', 1) }} else w end
            when ends_with(w, 'ed') and {{ _porter_has_vowel(2) }} then {{ _porter_cut('w', 2) }}
            when ends_with(w, 'ing') and {{ _porter_has_vowel(3) }} then {{ _porter_cut('w', 3) }}
            else w
        end as w,
        not ends_with(w, 'eed') and (
            (ends_with(w, 'ed') and {{ _porter_has_vowel(2) }})
            or (ends_with(w, 'ing') and {{ _porter_has_vowel(3) }})
        ) as was_cut
    from {{ _porter_input(prefix ~ '_1a') }}
),
{{ prefix }}_1b as (
    select word,
        case
            when not was_cut then w
            when ends_with(w, 'at') or ends_with(w, 'bl') or ends_with(w, 'iz') then w || 'e'
            when {{ _porter_double_consonant() }} and not regexp_matches(w, '[lsz]$') then {{ _porter_cut('w', 1) }}
            when {{ _porter_m() }} = 1 and {{ _porter_cvc() }} then w || 'e'
            else w
        end as w
    from (select word, w, was_cut, {{ _porter_cv('w') }} as cv from {{ prefix }}_1b_cut)
),
{{ prefix }}_1c as (
    select word,
        case
            when ends_with(w, 'y') and {{ _porter_has_vowel(1) }} then {{ _porter_cut('w', 1) }} || 'i'
            else w
        end as w
    from {{ _porter_input(prefix ~ '_1b') }}
),
{{ prefix }}_2 as (
    select word, {{ _porter_suffix_step(step2, 0) }} as w from {{ _porter_input(prefix ~ '_1c') }}
),
{{ prefix }}_3 as (
    select word, {{ _porter_suffix_step(step3, 0) }} as w from {{ _porter_input(prefix ~ '_2') }}
),
{{ prefix }}_4 as (
    select word, {{ _porter_suffix_step(step4, 1) }} as w from {{ _porter_input(prefix ~ '_3') }}
),
{{ prefix }}_5a as (
    select word,
        case
            when ends_with(w, 'e') and ({{ _porter_m(1) }} > 1 or ({{ _porter_m(1) }} = 1 and not {{ _porter_cvc(1) }}))
                then {{ _porter_cut('w', 1) }}
            else w
        end as w
    from {{ _porter_input(prefix ~ '_4') }}
),
{{ prefix }}_stemmed as (
    select word,
        case
            when length(word) <= 2 then word
            when {{ _porter_m() }} > 1 and ends_with(w, 'll') then {{ _porter_cut('w', 1) }}
            else w
        end as stem
    from {{ _porter_input(prefix ~ '_5a') }}
)
{%- endmacro %}

{#- The BM25 weight of a term in a finding, rounded to search_weight_decimals places: a
    finding's score for a query is the sum of its matched terms' weights (so the score is
    exact to that many places, whoever adds them up, and scores equal to that precision are
    ties, ordered by finding_key). -#}
{% macro search_bm25_weight(document_count, document_frequency, term_frequency, document_length,
                            average_length) -%}
    round(
        ln(1 + ({{ document_count }} - {{ document_frequency }} + 0.5) / ({{ document_frequency }} + 0.5))
        * {{ term_frequency }} * ({{ var('search_bm25_k1') }} + 1)
        / ({{ term_frequency }} + {{ var('search_bm25_k1') }} * (
            1 - {{ var('search_bm25_b') }}
            + {{ var('search_bm25_b') }} * {{ document_length }} / {{ average_length }})),
        {{ var('search_weight_decimals') }})
{%- endmacro %}

{#- The statement that (re)creates the macro <schema>.search_words(text): the words of a text, in
    order, as a list (stop words included; `ofsted search` counts them against its limit). -#}
{% macro create_search_words_macro(schema) -%}
create or replace macro {{ schema }}.search_words(query_text) as
    list_filter({{ search_words('query_text') }}, lambda w: w != '')
{%- endmacro %}

{#- The statement that (re)creates the table macro <schema>.porter_stems(text): every word of
    a text (stop words included) with its Porter stem, whether or not a finding has it. -#}
{% macro create_porter_stems_macro(schema) -%}
create or replace macro {{ schema }}.porter_stems(query_text) as table
with
input_words as (
    select distinct unnest({{ search_words('query_text') }}) as word
),
stem_input as (
    select word from input_words where word != ''
),
{{ porter_stem_ctes('stem_input', 'query_stem') }}
select word, stem from query_stem_stemmed
{%- endmacro %}

{#- The statement that (re)creates the table macro <schema>.search_terms(query_text): the words
    of a text that are not stop words, each with its term from <schema>.search_vocabulary
    (null when no finding has the word: it matches nothing). -#}
{% macro create_search_terms_macro(vocabulary_relation) -%}
{%- set schema = vocabulary_relation.schema -%}
{%- set vocabulary = schema ~ '.' ~ vocabulary_relation.identifier -%}
create or replace macro {{ schema }}.search_terms(query_text) as table
with
input_words as (
    select distinct unnest({{ search_words('query_text') }}) as word
)
select input_words.word, vocabulary.term
from input_words
left join {{ vocabulary }} as vocabulary on input_words.word = vocabulary.word
where input_words.word != '' and not coalesce(vocabulary.is_stop_word, false)
{%- endmacro %}

{#- The statement that (re)creates the table macro <schema>.search_findings(query_text,
    max_results := 1000, any_word := false): the findings that have every word of the query
    (any of them with any_word := true), stemmed, stop words dropped; ranked by BM25 (the sum of
    finding_terms.bm25_weight over the matched terms), best first, ties by finding_key; at most
    max_results. A query word in no finding makes an every-word search find nothing.
    Columns: finding_key, score, matched_terms, and the findings_wide columns an analyst reads. -#}
{% macro create_search_findings_macro(terms_relation, findings_relation) -%}
{#- schema-qualified only: the published copy of the file has another catalog name -#}
{%- set schema = terms_relation.schema -%}
{%- set terms = schema ~ '.' ~ terms_relation.identifier -%}
{%- set findings = findings_relation.schema ~ '.' ~ findings_relation.identifier -%}
create or replace macro {{ schema }}.search_findings(query_text, max_results := 1000, any_word := false) as table
with
query_words as (
    select word, term from {{ schema }}.search_terms(query_text)
),
required as (
    -- the distinct terms an every-word search needs; a word without a term counts, and is never matched
    select count(distinct coalesce(term, '#' || word)) as term_count from query_words
),
postings as (
    select terms.term, terms.finding_key, terms.bm25_weight
    from {{ terms }} as terms
    where terms.term in (select query_words.term from query_words where query_words.term is not null)
),
scored as (
    select
        postings.finding_key,
        round(sum(postings.bm25_weight), {{ var('search_weight_decimals') }}) as score,
        list(postings.term order by postings.term) as matched_terms,
        count(*) as matched_term_count
    from postings
    group by postings.finding_key
),
matching as (
    select scored.*
    from scored
    where any_word or scored.matched_term_count = (select required.term_count from required)
),
best as (
    select * from matching
    order by score desc, finding_key
    limit max_results
)
select
    scored.finding_key,
    scored.score,
    scored.matched_terms,
    findings.authority_name_as_written,
    findings.authority_name,
    findings.gss_code,
    findings.region,
    findings.inspection_start_date,
    findings.calendar_year,
    findings.letter_date,
    findings.category,
    findings.themes,
    findings.finding_text,
    findings.source_uri,
    findings.inspection_key
from best as scored
inner join {{ findings }} as findings on scored.finding_key = findings.finding_key
order by scored.score desc, scored.finding_key
{%- endmacro %}
