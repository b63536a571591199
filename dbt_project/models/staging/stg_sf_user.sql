with source as (

    select * from {{ source('sf_raw', 'sf_user') }}

),

renamed as (

    select
        id as user_id,
        username,
        name,
        email,
        isactive as is_active,
        division,
        audit_phase__c as audit_phase,
        lastmodifieddate as last_modified_at,
        systemmodstamp as system_modstamp,
        _extracted_at as extracted_at,
        _run_id as extraction_run_id
    from source

)

select * from renamed
