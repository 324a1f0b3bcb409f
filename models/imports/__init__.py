"""Catalog file imports and exports: their jobs, reports and the staging table."""
