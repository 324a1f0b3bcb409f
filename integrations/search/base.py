"""The search interface: index product documents, drop them, and find product ids.

Backends take and return these small dataclasses only. Filters mean the
same as the listing's: any of `category_ids`, and one variant that matches
the price range (and has stock, when `in_stock`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class VariantFacts:
    price: Decimal
    currency: str
    available: int


@dataclass(frozen=True)
class ProductDocument:
    """What search knows about one product."""

    id: str
    name: str
    description: str = ""
    category_id: str | None = None
    category_path: str = ""
    attributes: str = ""
    variants: list[VariantFacts] = field(default_factory=list)


@dataclass(frozen=True)
class SearchQuery:
    text: str
    category_ids: list[str] | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False
    limit: int = 20
    after: list | None = None  # the last hit's sort values, from SearchPage.next_after


@dataclass(frozen=True)
class SearchPage:
    ids: list[str]
    next_after: list | None  # pass back as SearchQuery.after for the next page; None on the last


Progress = Callable[[int], None]


class SearchBackend(ABC):
    @abstractmethod
    def index(self, documents: list[ProductDocument]) -> None:
        """Add or replace these documents."""

    @abstractmethod
    def delete(self, ids: list[str]) -> None:
        """Drop these products; unknown ids are not an error."""

    @abstractmethod
    def search(self, query: SearchQuery, connection=None) -> SearchPage:
        """Matching product ids, best first.

        `connection`: an open SQLAlchemy connection to the catalog database that a backend reading it may
        use instead of checking out one of its own (one checkout, one ping, per request); others ignore it.
        """

    def search_page(self, query: SearchQuery, page_sql: str, connection=None) -> tuple[SearchPage, str | None]:
        """`search`, and the page's products built in the same round trip, when this backend can.

        `page_sql`: SQL selecting one text value from a relation written `{page}` in it, whose columns are
        `id` (uuid) and `n` (the hit's position on the page). The text it gives is returned beside the hits;
        None when the caller must build the page from `SearchPage.ids` itself (this default).
        """
        return self.search(query, connection=connection), None

    def index_ids(self, ids: list[str]) -> set[str] | None:
        """Index these products straight from the catalog tables; the ids found, or None if documents are needed."""
        return None

    @abstractmethod
    def reindex(self, documents: Iterable[ProductDocument], progress: Progress | None = None) -> int:
        """Rebuild the whole index from `documents` so searches never see it half-built; returns the count."""


def split_prefix(text: str) -> tuple[str, str]:
    """`"red run"` → `("red", "run")`: the last plain word, unless the text ends in a space or operator.

    Type-ahead: the word being typed is matched as a prefix.
    """
    words = text.rstrip("\n").split(" ")
    last = words[-1]
    if last and last.isalnum() and text.count('"') % 2 == 0:
        return " ".join(words[:-1]), last.lower()
    return text, ""
