{#-
  Generated from config/objects/user.yml by sf_lakehouse.dbt_models; do not edit.
  Change the spec, then run: python -m sf_lakehouse.dbt_models
  Salesforce User observations, renamed for the SCD2 dimension.
-#}
{{ sf_staging(
    source('sf_raw', 'sf_user'),
    key='user_id',
    columns={
        'username': 'username',
        'name': 'name',
        'email': 'email',
        'isactive': 'is_active',
        'division': 'division',
        'audit_phase__c': 'audit_phase'
    },
    deletions=false
) }}
