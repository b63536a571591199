"""The AWS side: Secrets Manager, deployment, the Glue job, Athena."""
