"""The peers: the same SCD Type 2 work done by dlt's `scd2` merge strategy and by
`dbt snapshot`, fed the same per-run observations as the pipeline's raw table received."""
