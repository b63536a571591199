{#-
  Generated from config/objects/opportunity.yml by sf_lakehouse.dbt_models; do not edit.
  Change the spec, then run: python -m sf_lakehouse.dbt_models
  Salesforce Opportunity observations, renamed for the SCD2 dimension.
-#}
{{ sf_staging(
    source('sf_raw', 'sf_opportunity'),
    key='opportunity_id',
    columns={
        'name': 'name',
        'accountid': 'account_id',
        'ownerid': 'owner_id',
        'closedate': 'close_date',
        'stagename': 'stage_name',
        'amount': 'amount'
    },
    deletions=true
) }}
