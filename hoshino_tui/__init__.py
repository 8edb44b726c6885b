"""Hoshino's dashboard: a live view of a node and an inspector for what waits in the bucket."""
