{#-
  Generated from config/objects/account.yml by sf_lakehouse.dbt_models; do not edit.
  Change the spec, then run: python -m sf_lakehouse.dbt_models
  Salesforce Account observations, renamed for the SCD2 dimension.
-#}
{{ sf_staging(
    source('sf_raw', 'sf_account'),
    key='account_id',
    columns={
        'name': 'name',
        'industry': 'industry',
        'billingcountry': 'billing_country',
        'type': 'type',
        'ownerid': 'owner_id'
    },
    deletions=true
) }}
