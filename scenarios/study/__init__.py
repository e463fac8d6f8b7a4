"""What-if ensembles: study files, members, executors, metrics and aggregation."""
