"""Catalog feeds in and exports out: readers, the staged load, reject reports."""
