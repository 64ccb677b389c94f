"""The stand-in for restored clusters: one real PostgreSQL database per target cluster, loaded as a restore
would bring it, and the master user's password set as ModifyDBCluster sets it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aurora_restore.local.postgres import SUPERUSER

SEED_SQL = Path(__file__).with_name("seed.sql")

# The clusters' master user, as Aurora makes it: not a superuser, but CREATEROLE and CREATEDB (Aurora's
# master is rds_superuser's member with those). It owns each restored database and what the seed creates.
MASTER_USERNAME = "cluster_admin"
# A renaming cluster's database waits under a name starting so: no endpoint reaches it meanwhile.
PARKED = "renaming_"


class StandIn:
    """The real PostgreSQL server standing in for restored clusters: one database per target cluster.

    The steps connect as MASTER_USERNAME, not as the server's superuser: what only a superuser may do
    fails here as it would on Aurora.
    """

    def __init__(
        self, server: Any, database_for: Callable[[str], str], master: str = MASTER_USERNAME
    ) -> None:
        self.server = server
        self.database_for = database_for
        self.master = master
        self._lock = threading.Lock()

    def load(self, cluster_id: str) -> None:
        """A fresh restore: the database recreated with the seed schema, as a snapshot would bring it."""
        from psycopg2 import sql

        dbname, master = self.database_for(cluster_id), sql.Identifier(self.master)
        with self._lock:
            admin = self.server.connect("postgres")
            try:
                with admin.cursor() as cursor:
                    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.master,))
                    if cursor.fetchone() is None:  # its password is set as the cluster's (ModifyDBCluster)
                        cursor.execute(
                            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER CREATEDB CREATEROLE").format(master)
                        )
                    # What rds_superuser may do on Aurora and masking needs: no trigger fires while masking
                    # (functions.database.masking.mask).
                    cursor.execute(
                        sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(master)
                    )
                    cursor.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
                    )
                    cursor.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), master)
                    )
            finally:
                admin.close()
            conn = self.server.connect(dbname)
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql.SQL("SET ROLE {}").format(master))
                    cursor.execute(SEED_SQL.read_text())
            finally:
                conn.close()

    def move(self, from_cluster: str, to_name: str, *, parked: bool = False) -> bool:
        """A cluster's database renamed as its cluster is: from `from_cluster`'s database (or, `parked`,
        from the database named `from_cluster` itself) to `to_name`'s, or to `to_name` itself when it is not
        a cluster's (a parking name). Its sessions end first, as a rename restarts the cluster; a leftover
        database under the new name (no cluster holds that name: RDS refused it otherwise) is dropped.
        False when there is no database to move (a cluster that never held data)."""
        from psycopg2 import sql

        source = from_cluster if parked else self.database_for(from_cluster)
        target = to_name if to_name.startswith(PARKED) else self.database_for(to_name)
        with self._lock:
            admin = self.server.connect("postgres")
            try:
                with admin.cursor() as cursor:
                    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (source,))
                    if cursor.fetchone() is None:
                        return False
                    cursor.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target))
                    )
                    _rename_database(cursor, source, target, open_after=not target.startswith(PARKED))
            finally:
                admin.close()
        return True

    def set_master_password(self, username: str, password: str) -> None:
        from psycopg2 import sql

        from functions.database import scram_verifier

        with self._lock:
            conn = self.server.connect("postgres")
            try:
                with conn.cursor() as cursor:
                    # As a verifier, as setup_db_users sends them: the server's log never sees the password.
                    cursor.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                            sql.Identifier(username), sql.Literal(scram_verifier(password))
                        )
                    )
            finally:
                conn.close()
        if username == SUPERUSER:  # the runtime's own connections use the superuser's password
            self.server.password = type(self.server.password)(password)


def _rename_database(cursor: Any, source: str, target: str, *, open_after: bool) -> None:
    """ALTER DATABASE ... RENAME, once its sessions are gone: none may open meanwhile, and (`open_after`)
    they may again under the new name (a parked database takes none)."""
    from psycopg2 import errors, sql

    cursor.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(source)))
    cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (source,))
    rename = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(source), sql.Identifier(target))
    for _ in range(100):  # a terminated session takes a moment to leave
        try:
            cursor.execute(rename)
            break
        except errors.ObjectInUse:
            time.sleep(0.05)
    else:
        cursor.execute(rename)  # still in use after 5 s: the error stands
    if open_after:
        cursor.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(target)))


def load_while_creating(stand_in: StandIn | None, cluster_id: str) -> Callable[[], None]:
    """Reload the stand-in database while the cluster is `creating`, as RDS brings the data in within the
    restore's own time: at the due time the cluster is ready at once, not a reload later. The returned
    callable waits for the load (when the restore is shorter than it) and raises what it raised."""
    if stand_in is None:
        return lambda: None
    failure: list[Exception] = []

    def load() -> None:
        try:
            stand_in.load(cluster_id)
        except Exception as exc:  # noqa: BLE001 - raised again when the restore is due
            failure.append(exc)

    thread = threading.Thread(target=load, name=f"stand-in-load-{cluster_id}", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failure:
            raise failure[0]

    return wait
