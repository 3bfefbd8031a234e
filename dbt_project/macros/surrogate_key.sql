{#- A warehouse surrogate key: md5 of the natural key's parts, so the same natural key gets
    the same key on every build (and in every full refresh). Nulls are spelt out so that
    (null, 'a') and ('', 'a') differ. -#}
{% macro surrogate_key(parts) -%}
    md5(concat_ws('|'
    {%- for part in parts %}, coalesce(cast({{ part }} as varchar), '<null>')
    {%- endfor %}))
{%- endmacro %}
