"""The dbt snapshot peer: a small dbt project (`template/`, snapshots rendered per object by
`runner.py`) and one `dbt snapshot` invocation per run, on DuckDB."""
