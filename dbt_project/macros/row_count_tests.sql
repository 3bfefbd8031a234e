{#- The model has exactly as many rows as `compare_model` (findings_wide against fct_findings).
    Returns one row with both counts when they differ. -#}
{% test equal_row_count(model, compare_model) %}
select *
from (
    select
        (select count(*) from {{ model }}) as model_rows,
        (select count(*) from {{ compare_model }}) as compare_model_rows
) as counts
where model_rows != compare_model_rows
{% endtest %}
