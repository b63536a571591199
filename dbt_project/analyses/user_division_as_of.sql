{#-
  Which division and audit phase was each user in at an instant: the as_of macro on the User
  dimension. `dbt compile` renders it (target/compiled/.../analyses/); run the SQL in DuckDB or
  Athena. Every dimension works the same way.
-#}
select
    users.user_id,
    users.username,
    users.division,
    users.audit_phase,
    users.effective_from
from {{ as_of(ref('dim_sf_user_scd'), "timestamp '2026-03-02 00:00:00'") }} as users
order by users.user_id
