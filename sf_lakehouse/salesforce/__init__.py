"""Salesforce access. `client` and `types` import no Dagster (the AWS Glue job uses them);
`resource` is the Dagster resource beside them."""
