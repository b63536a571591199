"""Iceberg tables and layouts, the Dagster resource and IO manager over them, maintenance, and
SQL over the local lakehouse."""
