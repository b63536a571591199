{#- Fails with the keys that have no current row or more than one. -#}
{% test exactly_one_current_row(model, key, current_flag='is_current') %}

with per_key as (

    select
        {{ key }} as key_value,
        sum(case when {{ current_flag }} then 1 else 0 end) as current_rows
    from {{ model }}
    group by {{ key }}

)

select * from per_key where current_rows <> 1

{% endtest %}
