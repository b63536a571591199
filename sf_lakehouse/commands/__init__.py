"""The `sf-lakehouse` commands that do more than parse their arguments (`sf_lakehouse.cli`
holds the parser): a run and its report, the repair, the demo and the summaries it prints."""
