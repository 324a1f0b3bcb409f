"""PostgreSQL backups: a pgBackRest repository behind a small interface (see base.py)."""

from integrations.backups.base import (Backup, BackupError, ClusterConfig, RepoConfig, RepoDamaged,
                                       RepoInfo, RepoUnreachable)
from integrations.backups.pgbackrest import PgBackRest, ScratchCluster

__all__ = ["Backup", "BackupError", "ClusterConfig", "PgBackRest", "RepoConfig", "RepoDamaged", "RepoInfo",
           "RepoUnreachable", "ScratchCluster"]
