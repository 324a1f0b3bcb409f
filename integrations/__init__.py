"""Vendor adapters. They import nothing of ours: small dataclasses in, small dataclasses out."""
