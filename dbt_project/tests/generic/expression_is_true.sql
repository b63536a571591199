{#- Fails with the rows for which the boolean expression is false. -#}
{% test expression_is_true(model, expression, where_clause='1 = 1') %}

select * from {{ model }} where ({{ where_clause }}) and not ({{ expression }})

{% endtest %}
