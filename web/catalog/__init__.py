"""The catalog's HTTP surface: /products, /categories and the local /media store."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flask import current_app

from integrations.search import SearchBackend, make_search
from integrations.storage import Storage, make_storage
from models.catalog.cache import CatalogCache
from web.extensions import runtime


@dataclass
class CatalogServices:
    """The search backend, page cache and object store of one app, made on first use."""

    app_runtime: object

    @cached_property
    def search(self) -> SearchBackend:
        return make_search(self.app_runtime.settings, self.app_runtime.db.engine)

    @cached_property
    def cache(self) -> CatalogCache:
        settings = self.app_runtime.settings
        return CatalogCache(self.app_runtime.redis, settings.CATALOG_CACHE_TTL, settings.CATALOG_SNAPSHOT_TTL)

    @cached_property
    def storage(self) -> Storage:
        return make_storage(self.app_runtime.settings)


def services() -> CatalogServices:
    if "catalog" not in current_app.extensions:
        current_app.extensions["catalog"] = CatalogServices(runtime())
    return current_app.extensions["catalog"]
