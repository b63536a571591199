{#-
  SCD Type 2 history of Salesforce Users, tracking Division and Audit_Phase__c.
  Implements the rule of shared/design.md clause by clause (comments name the clause). The table is
  rebuilt from the whole raw table on every run, so it depends only on the set of raw rows (rule 6).
-#}
{{ config(
    materialized=('external' if target.type == 'duckdb' else 'table'),
    plugin='lakehouse',
    format='parquet',
    table_type='iceberg',
    partitioned_by=['is_current', 'division'],
    write_compression='zstd',
    table_properties={'write_target_data_file_size_bytes': '268435456'},
) }}

with observations_raw as (

    select * from {{ ref('stg_sf_user') }}

),

-- Rule 1: one observation per (user, SystemModstamp); the latest extraction wins.
observations as (

    select *
    from (
        select
            *,
            row_number() over (
                partition by user_id, system_modstamp
                order by extracted_at desc, extraction_run_id desc
            ) as extraction_rank
        from observations_raw
    ) ranked
    where extraction_rank = 1

),

-- Rule 2: the first observation, and each one whose tracked values differ (null-safe) from the
-- previous observation's, starts a version.
change_points as (

    select
        *,
        case
            when row_number() over (partition by user_id order by system_modstamp) = 1 then 1
            when division is distinct from
                lag(division) over (partition by user_id order by system_modstamp) then 1
            when audit_phase is distinct from
                lag(audit_phase) over (partition by user_id order by system_modstamp) then 1
            else 0
        end as starts_version
    from observations

),

versioned as (

    select
        *,
        sum(starts_version) over (
            partition by user_id
            order by system_modstamp
            rows between unbounded preceding and current row
        ) as version_number
    from change_points

),

-- Rule 3: a version is effective from the SystemModstamp of the observation that started it.
version_starts as (

    select
        user_id,
        version_number,
        min(system_modstamp) as effective_from
    from versioned
    group by user_id, version_number

),

-- Rule 4: the other attributes come from the latest observation inside the version.
latest_in_version as (

    select *
    from (
        select
            *,
            row_number() over (
                partition by user_id, version_number
                order by system_modstamp desc
            ) as recency_rank
        from versioned
    ) ranked
    where recency_rank = 1

),

versions as (

    select
        latest.user_id,
        latest.username,
        latest.name,
        latest.email,
        latest.is_active,
        latest.division,
        latest.audit_phase,
        starts.effective_from,
        -- Rule 3: half-open intervals; the next version's start ends this one.
        lead(starts.effective_from) over (
            partition by starts.user_id
            order by starts.effective_from
        ) as effective_to
    from version_starts as starts
    inner join latest_in_version as latest
        on starts.user_id = latest.user_id
        and starts.version_number = latest.version_number

),

final as (

    select
        -- Rule 5: deterministic id of (user, effective_from).
        {{ dbt.hash(dbt.concat([
            "user_id",
            "'|'",
            "cast(effective_from as " ~ dbt.type_string() ~ ")",
        ])) }} as scd_id,
        user_id,
        username,
        name,
        email,
        is_active,
        division,
        audit_phase,
        effective_from,
        effective_to,
        effective_to is null as is_current
    from versions

)

select * from final
