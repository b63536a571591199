{#- Fails with every interval of a key that overlaps or leaves a gap before the next one. -#}
{% test contiguous_intervals(model, key, valid_from, valid_to) %}

with ordered as (

    select
        {{ key }} as key_value,
        {{ valid_from }} as valid_from,
        {{ valid_to }} as valid_to,
        lead({{ valid_from }}) over (
            partition by {{ key }} order by {{ valid_from }}
        ) as next_valid_from
    from {{ model }}

)

select *
from ordered
where
    (next_valid_from is not null and (valid_to is null or valid_to <> next_valid_from))
    or (next_valid_from is null and valid_to is not null)

{% endtest %}
