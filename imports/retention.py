"""Deleting the stored files that the retention purges remove the rows of: shipping labels and import files."""

from __future__ import annotations

import posixpath

from integrations.storage import make_storage
from imports import inboxes


class StoredFiles:
    """What `models.retention.purges` calls to delete files; each storage is opened once, on first use."""

    def __init__(self, settings):
        self.settings = settings
        self._opened: dict[str, object] = {}

    def _storage(self, location: str | None):
        if location not in self._opened:
            self._opened[location] = (make_storage(self.settings) if location is None
                                      else inboxes.open_storage(self.settings, location))
        return self._opened[location]

    def delete_label(self, key: str) -> None:
        self._storage(None).delete(key)

    def delete_image(self, key: str) -> None:
        self._storage(None).delete(key)

    def delete_import_files(self, inbox: str, source_key: str, report_key: str | None) -> None:
        """The file where the import left it (processed/ or failed/) and its error report."""
        try:
            storage = self._storage(inboxes.find_inbox(self.settings, inbox).location)
        except inboxes.LocationError:  # the inbox is no longer configured: nothing of ours to reach
            return
        name = posixpath.basename(source_key)
        for key in (f"processed/{name}", f"failed/{name}", report_key):
            if key:
                storage.delete(key)

    def close(self) -> None:
        for storage in self._opened.values():
            inboxes.close(storage)
        self._opened.clear()
