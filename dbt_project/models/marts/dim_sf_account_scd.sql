{#-
  Generated from config/objects/account.yml by sf_lakehouse.dbt_models; do not edit.
  Change the spec, then run: python -m sf_lakehouse.dbt_models
  SCD Type 2 history of Salesforce Account records, tracking Type, OwnerId and deletions.
-#}
{{ config(partitioned_by=['is_current', 'bucket(account_id, 16)']) }}
{{ scd2(
    ref('stg_sf_account'),
    key='account_id',
    tracked=['type', 'owner_id'],
    carried=['name', 'industry', 'billing_country'],
    deletions=true
) }}
