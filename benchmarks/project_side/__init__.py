"""The parts of the benchmark that use sf_lakehouse itself, run with the project's own venv
(`python -m benchmarks.project_side.<module> ...`): each prints one JSON line on stdout.

They detect at run time what the checkout offers (Bulk API 2.0 in the client, an incremental
dimension), so the same harness measures main today and after the other branches merge.
"""
