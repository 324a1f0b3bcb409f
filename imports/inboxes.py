"""Where catalog files come from and exports go: `sftp://`, `s3://` or a local folder.

An inbox's root holds the dropped files; the pipeline moves each one to
`processing/`, then `processed/` or `failed/`, and writes `errors/<file>.csv`.
`?policy=all_or_nothing` on an inbox makes it refuse a whole file when any
row fails. Uploads through the API use the app's own object store under `imports/`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote, urlsplit

from integrations.storage import Storage, make_storage
from models.imports.tables import ALL_OR_NOTHING, PARTIAL
from settings import Settings

UPLOAD = "upload"
POLICIES = (PARTIAL, ALL_OR_NOTHING)


class LocationError(ValueError):
    """A configured or requested location that cannot be used."""


@dataclass(frozen=True)
class Inbox:
    name: str  # the location without password or query: what jobs record
    location: str
    policy: str = PARTIAL


def split_locations(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_location(location: str) -> Inbox:
    """An inbox (or destination) from its configured form."""
    parts = urlsplit(location)
    policy = parse_qs(parts.query).get("policy", [PARTIAL])[0]
    if policy not in POLICIES:
        raise LocationError(f"{location}: policy must be one of {', '.join(POLICIES)}")
    if parts.scheme in ("sftp", "s3"):
        host = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        name = f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"
    elif parts.scheme in ("", "file"):
        name = parts.path.rstrip("/") or "/"
    else:
        raise LocationError(f"{location}: use sftp://, s3:// or a local folder")
    return Inbox(name, location, policy)


def configured_inboxes(settings: Settings) -> list[Inbox]:
    return [parse_location(item) for item in split_locations(settings.IMPORT_INBOXES)]


def find_inbox(settings: Settings, name: str) -> Inbox:
    """The inbox jobs record as `name` (the upload area included)."""
    if name == UPLOAD:
        return Inbox(UPLOAD, UPLOAD)
    for inbox in configured_inboxes(settings):
        if inbox.name == name:
            return inbox
    raise LocationError(f"no inbox {name!r} is configured")


def resolve_source(settings: Settings, source: str) -> tuple[Inbox, str]:
    """The configured inbox holding `source` (s3://bucket/key, sftp://path) and the key inside it."""
    parts = urlsplit(source)
    for inbox in configured_inboxes(settings):
        root = urlsplit(inbox.location)
        if root.scheme.replace("file", "") != parts.scheme.replace("file", ""):
            continue
        base = root.path.rstrip("/") + "/"
        if parts.scheme == "s3":
            if root.hostname == parts.hostname and parts.path.startswith(base):
                return inbox, parts.path[len(base):]
        elif parts.netloc in ("", root.netloc) and parts.path.startswith(base):
            return inbox, parts.path[len(base):]
    raise LocationError(f"{source} is not inside a configured inbox")


def check_key_form(key: str) -> str:
    """A key naming a file at the top of an inbox."""
    if not key or "/" in key or key.startswith("."):
        raise LocationError(f"{key!r}: name a file at the top of the inbox")
    return key


def open_storage(settings: Settings, location: str) -> Storage:
    """The storage behind an inbox or destination location."""
    if location == UPLOAD:
        return make_storage(replace(settings, STORAGE_LOCAL_DIR=str(settings.path(settings.STORAGE_LOCAL_DIR)
                                                                    / "imports"),
                                    S3_PREFIX=f"{settings.S3_PREFIX.strip('/')}/imports".lstrip("/")))
    parts = urlsplit(location)
    if parts.scheme == "sftp":
        from integrations.storage.sftp import SFTPStorage

        return SFTPStorage(parts.hostname, parts.port or 22, unquote(parts.username or ""), unquote(parts.path),
                           settings.IMPORT_SFTP_KNOWN_HOSTS,
                           password=unquote(parts.password or "") or settings.IMPORT_SFTP_PASSWORD,
                           key_filename=settings.IMPORT_SFTP_KEY_FILE, timeout=settings.SERVICE_TIMEOUT * 5)
    if parts.scheme == "s3":
        from integrations.storage.s3 import S3Storage, s3_client

        client = s3_client(settings.S3_ENDPOINT_URL, settings.S3_REGION, settings.S3_ACCESS_KEY_ID,
                           settings.S3_SECRET_ACCESS_KEY, settings.SERVICE_TIMEOUT * 5)
        return S3Storage(client, parts.hostname, parts.path.strip("/"))
    from integrations.storage.local import LocalStorage

    return LocalStorage(settings.path(parts.path), "")


def close(storage: Storage) -> None:
    """Close a storage's connection if it holds one (SFTP)."""
    if hasattr(storage, "close"):
        storage.close()
