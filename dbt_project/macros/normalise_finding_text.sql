{#- The normalised text of a finding: how two versions of a letter are judged to state "the same
    finding" (finding_key, int_findings_keyed) and how two letters are judged to have a finding
    in common (assert_no_conflicting_letters). Lower case; every run of characters other than
    a-z and 0-9 (spaces, line breaks, punctuation, quotes, dashes, accented letters) becomes one
    space; trimmed. So "Supervision is   regular." and "supervision is regular" are the same
    finding, "Supervision is regular and recorded." is another (a rewording). It is the
    finding part of the loader's content hash (ingest pipeline `content_hash`, `_fold`). -#}
{% macro normalise_finding_text(expr) -%}
    trim(regexp_replace(lower({{ expr }}), '[^a-z0-9]+', ' ', 'g'))
{%- endmacro %}
