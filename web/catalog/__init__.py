"""The catalog's HTTP surface: /products, /categories and the local /media store."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from integrations.search import SearchBackend
from integrations.storage import Storage
from models.catalog.cache import CatalogCache
from web.extensions import runtime


@dataclass
class CatalogServices:
    """The search backend, page cache and object store of one app (bootstrap builds them)."""

    app_runtime: object

    @property
    def search(self) -> SearchBackend:
        return self.app_runtime.search

    @property
    def cache(self) -> CatalogCache:
        return self.app_runtime.catalog_cache

    @property
    def storage(self) -> Storage:
        return self.app_runtime.storage


def services() -> CatalogServices:
    if "catalog" not in current_app.extensions:
        current_app.extensions["catalog"] = CatalogServices(runtime())
    return current_app.extensions["catalog"]
