{#-
  as_of(relation, ts)

  Each record's version in effect at the instant `ts` (an SQL expression), as a subquery:
      select * from {{ as_of(ref('dim_sf_user_scd'), "timestamp '2026-03-02 00:00:00'") }}
  Intervals are half-open (rule 3): a version starting exactly at ts is the one in effect, the
  version it replaced is not. Records first seen after ts have no row. Works on DuckDB and Athena;
  alias it (`... }} as users`) to join it.
-#}
{% macro as_of(relation, ts) -%}
(
    select *
    from {{ relation }}
    where effective_from <= {{ ts }}
        and (effective_to > {{ ts }} or effective_to is null)
)
{%- endmacro %}
