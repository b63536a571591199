"""Salesforce access. Everything here but `resource` imports no Dagster (the AWS Glue job uses
it): `connection` (settings, SF_* variables, secrets), `client` (log in, calls under a policy),
`http` (the session: timeouts, what responses say), `retry` (what is retried, backoff),
`bulk` (Bulk API 2.0 query jobs), `convert` (pages to Arrow, rejects), `types`, `errors`;
`resource` is the Dagster resource beside them."""
