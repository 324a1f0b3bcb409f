"""Catalog files in and out: readers (CSV, XML, JSON), validation, the staged load, reports and exports."""
