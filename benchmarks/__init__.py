"""Benchmarks of sf_lakehouse against dlt's scd2 and dbt snapshot (`make bench`; never run by
the test suite). See the "Benchmarks" section of README.md."""
