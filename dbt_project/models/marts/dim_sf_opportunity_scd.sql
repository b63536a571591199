{#-
  Generated from config/objects/opportunity.yml by sf_lakehouse.dbt_models; do not edit.
  Change the spec, then run: python -m sf_lakehouse.dbt_models
  SCD Type 2 history of Salesforce Opportunity records, tracking StageName, Amount and deletions.
-#}
{{ config(partitioned_by=['is_current', 'bucket(opportunity_id, 16)']) }}
{{ scd2(
    ref('stg_sf_opportunity'),
    key='opportunity_id',
    tracked=['stage_name', 'amount'],
    carried=['name', 'account_id', 'owner_id', 'close_date'],
    deletions=true
) }}
