{#-
  Generated from config/objects/user.yml by sf_lakehouse.dbt_models; do not edit.
  Change the spec, then run: python -m sf_lakehouse.dbt_models
  SCD Type 2 history of Salesforce User records, tracking Division and Audit_Phase__c.
-#}
{{ config(partitioned_by=['is_current', 'bucket(user_id, 16)']) }}
{{ scd2(
    ref('stg_sf_user'),
    key='user_id',
    tracked=['division', 'audit_phase'],
    carried=['username', 'name', 'email', 'is_active'],
    deletions=false
) }}
