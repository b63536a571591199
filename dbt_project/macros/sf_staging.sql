{#-
  sf_staging(relation, key, columns, deletions=false)

  The staging select of one raw Salesforce table: every extracted record version, renamed for the
  SCD2 macro (duplicates of a re-extracted version are kept; scd2 removes them, rule 1).

  relation   the raw source, e.g. source('sf_raw', 'sf_user')
  key        the column the raw `id` becomes, e.g. 'user_id'
  columns    raw column -> staging column, in order, e.g. {'audit_phase__c': 'audit_phase'}
             (raw tables keep the Salesforce API names lower-cased)
  deletions  true for objects extracted with queryAll: `isdeleted` becomes is_deleted, a NULL
             counting as not deleted (rule 7)
-#}
{% macro sf_staging(relation, key, columns, deletions=false) %}
select
    id as {{ key }},
    {%- for raw_name, column in columns.items() %}
    {{ raw_name }}{% if raw_name != column %} as {{ column }}{% endif %},
    {%- endfor %}
    {%- if deletions %}
    coalesce(isdeleted, false) as is_deleted,
    {%- endif %}
    systemmodstamp as system_modstamp,
    _extracted_at as extracted_at,
    _run_id as extraction_run_id
from {{ relation }}
{% endmacro %}
