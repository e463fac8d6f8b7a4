"""Incident replay: readers per format, the observation feed, diffs and counterfactuals."""
