"""PostgreSQL backups: a pgBackRest repository behind a small interface (see base.py)."""

from integrations.backups.base import (Backup, BackupError, ClusterConfig, RepoConfig, RepoInfo,
                                       RepoUnreachable)
from integrations.backups.pgbackrest import PgBackRest, ScratchCluster

__all__ = ["Backup", "BackupError", "ClusterConfig", "PgBackRest", "RepoConfig", "RepoInfo", "RepoUnreachable",
           "ScratchCluster"]
