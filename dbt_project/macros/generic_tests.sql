{#- Generic tests the project needs (no dbt packages: `dbt deps` cannot run here).
    Each returns the offending rows, so a failure's output shows what broke. -#}

{#- Every row satisfies a boolean SQL expression (optionally only rows matching `where`). -#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}

{#- No two rows share the same combination of the given columns. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select
    {{ combination_of_columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- The column has at least one non-null value (fails on an empty or all-null column). -#}
{% test at_least_one(model, column_name) %}
select count({{ column_name }}) as non_null_values
from {{ model }}
having count({{ column_name }}) = 0
{% endtest %}

{#- The model has at least `min_rows` rows. -#}
{% test has_at_least_rows(model, min_rows=1) %}
select count(*) as n_rows
from {{ model }}
having count(*) < {{ min_rows }}
{% endtest %}

{#- The column's values all match a regular expression (RE2). -#}
{% test matches_pattern(model, column_name, pattern) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and not regexp_full_match({{ column_name }}, '{{ pattern }}')
{% endtest %}
