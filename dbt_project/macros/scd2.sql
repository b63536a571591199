{#-
  scd2(relation, key, tracked, carried=[], deletions=false)

  SCD Type 2 history of one Salesforce object, rebuilt from all of its observations on every run,
  implementing the SCD2 rules 1-7 of docs/design.md clause by clause (comments name the rule).
  Plain SQL both DuckDB and Athena (Trino) run: window functions, `is distinct from`, dbt.hash.

  relation   staging relation, one row per extracted record version, with the columns
             <key>, every tracked and carried column, is_deleted (when deletions),
             system_modstamp, extracted_at and extraction_run_id (stg_sf_<object> has them)
  key        the record id column, e.g. 'user_id'
  tracked    columns whose change (null-safe) starts a new version, e.g. ['division', 'audit_phase']
  carried    columns taken from the latest observation of each version
  deletions  true for objects extracted with queryAll: is_deleted is compared like a tracked
             column, so a deletion and an undelete each start a version (rule 7)

  Columns: scd_id, <key>, carried..., tracked..., [is_deleted], effective_from, effective_to,
  is_current.
-#}
{% macro scd2(relation, key, tracked, carried=[], deletions=false) %}
{%- if tracked | length == 0 -%}
    {{ exceptions.raise_compiler_error("scd2: give at least one tracked column") }}
{%- endif -%}
{#- Rule 7: the deletion flag is one more tracked column. -#}
{%- set compared = tracked + (['is_deleted'] if deletions else []) -%}
{%- set attributes = carried + compared -%}
{%- set record_window = "partition by " ~ key ~ " order by system_modstamp" -%}

{%- set incremental = sf_incremental_build() %}
with

{% if incremental -%}
-- Rule 8 (Athena; DuckDB's plugin does this in Python): rebuild only the records that have raw
-- rows extracted since this table's last commit, an hour earlier to cover an extraction that
-- started before that build and committed after it. Rebuilding a record reads all of its rows.
rebuilt_records as (

    select distinct {{ key }}
    from {{ relation }}
    where extracted_at > (
        select cast(max(committed_at) as timestamp(6)) - interval '1' hour
        from "{{ this.schema }}"."{{ this.identifier }}$snapshots"
    )

),

{% endif -%}
-- Rule 1: one observation per (record, SystemModstamp); the latest extraction wins, and of reads
-- tied on the extraction time the greatest run id (never the read order: docs/design.md rule 1).
observations as (

    select
        {{ key }},
        {%- for column in carried + tracked %}
        {{ column }},
        {%- endfor %}
        {%- if deletions %}
        -- Rule 7: a NULL IsDeleted counts as not deleted.
        coalesce(is_deleted, false) as is_deleted,
        {%- endif %}
        system_modstamp
    from (
        select
            *,
            row_number() over (
                partition by {{ key }}, system_modstamp
                order by extracted_at desc, extraction_run_id desc
            ) as extraction_rank
        from {{ relation }}
        {%- if incremental %}
        where {{ key }} in (select {{ key }} from rebuilt_records)
        {%- endif %}
    ) as ranked
    where extraction_rank = 1

),

-- Rule 2: the first observation of a record starts a version, and so does every later one whose
-- tracked values differ from the previous observation's. `is distinct from` is the null-safe
-- comparison (NULL equals NULL, NULL differs from any value). Other fields are not compared, so
-- their changes never start a version.
change_points as (

    select
        *,
        case
            when row_number() over ({{ record_window }}) = 1 then 1
            {%- for column in compared %}
            when {{ column }} is distinct from lag({{ column }}) over ({{ record_window }}) then 1
            {%- endfor %}
            else 0
        end as starts_version
    from observations

),

-- Rule 2: the running count of version starts numbers each observation's version.
versioned as (

    select
        *,
        sum(starts_version) over (
            {{ record_window }}
            rows between unbounded preceding and current row
        ) as version_number
    from change_points

),

versions as (

    select
        *,
        -- Rule 3: a version is effective from the SystemModstamp of the observation that
        -- started it (the earliest of the version).
        min(system_modstamp) over (
            partition by {{ key }}, version_number
        ) as effective_from,
        -- Rule 4: the version's attributes come from its latest observation.
        row_number() over (
            partition by {{ key }}, version_number
            order by system_modstamp desc
        ) as recency_rank
    from versioned

),

intervals as (

    select
        {{ key }},
        {%- for column in attributes %}
        {{ column }},
        {%- endfor %}
        effective_from,
        -- Rule 3: half-open intervals; the next version's start ends this one, and the last
        -- version stays open (NULL).
        lead(effective_from) over (
            partition by {{ key }}
            order by effective_from
        ) as effective_to
    from versions
    where recency_rank = 1

),

versions_built as (

    select
        -- Rule 5: a deterministic, unique id of (record, effective_from); rules 1-4 use nothing but
        -- the set of raw rows, so the same rows give the same table on every run (rule 6).
        {{ dbt.hash(dbt.concat([
            key,
            "'|'",
            "cast(effective_from as " ~ dbt.type_string() ~ ")",
        ])) }} as scd_id,
        {{ key }},
        {%- for column in attributes %}
        {{ column }},
        {%- endfor %}
        effective_from,
        effective_to,
        -- Rule 3: the open version is the current one.
        effective_to is null as is_current
    from intervals

)

{% if incremental -%}
-- Rule 8 (Athena): the rebuilt records' new versions, and their old versions that no longer
-- exist, marked for the merge to delete (`delete_condition`: a version that ends before it
-- starts, which no real version does). Versions of other records are not touched.
select * from versions_built
union all
select
    old.scd_id,
    old.{{ key }},
    {%- for column in attributes %}
    old.{{ column }},
    {%- endfor %}
    old.effective_from,
    old.effective_from - interval '1' second as effective_to,
    false as is_current
from {{ this }} as old
where old.{{ key }} in (select {{ key }} from rebuilt_records)
    and old.scd_id not in (select scd_id from versions_built)
{%- else -%}
select * from versions_built
{%- endif %}
{% endmacro %}


{#- True when an Athena build maintains the dimension incrementally (rule 8): the table exists
    and no full refresh was asked for. `sf_compile_incremental` renders that SQL offline (the
    tests compile it for Athena without AWS). DuckDB builds are incremental in the lakehouse
    plugin instead, so the SQL there is always the rebuild of the records it is given. -#}
{% macro sf_incremental_build() %}
    {%- if target.type != 'athena' -%}
        {{ return(false) }}
    {%- elif var('sf_compile_incremental', false) -%}
        {{ return(true) }}
    {%- elif flags.WHICH not in ('run', 'build') -%}
        {{ return(false) }}
    {%- else -%}
        {{ return(is_incremental()) }}
    {%- endif -%}
{% endmacro %}
