"""Monitoring: the metrics of every run (`metrics`, read back from the run by `run_facts`,
published by `publish` to CloudWatch or local JSON Lines), the alerts' sinks (`sinks`: files,
SNS, Slack) and `sf-lakehouse status` (`status`)."""
