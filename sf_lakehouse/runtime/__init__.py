"""The production Dagster runtime: its `dagster.yaml` (`instance.py`), what the deployed
environment knows that the configuration cannot (`deployed.py`), and the services' commands
(`services.py`). Names and sizes come from the `runtime:` section (sf_lakehouse/config/runtime.py).
"""
