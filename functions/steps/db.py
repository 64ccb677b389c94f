"""Steps 7-8: application users and their privileges, then verification of the restored database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from functions import config as config_resolver
from functions import database, secrets, sequence
from functions.engine.contract import Done, Outcome, StepContext
from functions.errors import NotFound
from functions.steps.swap import restored_cluster_id
from schemas.common import Step
from schemas.outputs import StepOutputs


@dataclass
class Connection:
    """Where and as whom the database steps connect, and the users they set up or verify."""

    endpoint: database.Endpoint
    master_user: str
    master_password: SecretStr
    grants: list[database.UserGrant]
    advertised_host: str
    advertised_port: int


@dataclass
class Master:
    """Where the restored database answers, and its master's credentials (the password wrapped)."""

    endpoint: database.Endpoint
    user: str
    password: SecretStr
    advertised_host: str
    advertised_port: int


def master_target(ctx: StepContext) -> Master:
    """The restored database and its master user: what every database step connects with."""
    config = ctx.config
    # check_restore_status recorded where the cluster answers; describe it only when that is missing.
    host, port = ctx.outputs.get("cluster_endpoint"), ctx.outputs.get("cluster_port")
    master_username = ctx.outputs.get("master_username")
    # Under swap the restored cluster beside the target: the database steps all come before the switch.
    cluster_id = restored_cluster_id(ctx)
    if not host:
        cluster = ctx.target_rds.cluster(cluster_id)
        if cluster is None or not cluster.get("Endpoint"):
            raise NotFound(f"cluster {cluster_id} has no endpoint")
        host, port, master_username = cluster["Endpoint"], cluster.get("Port"), cluster.get("MasterUsername")
    host, port = str(host), int(port or 5432)
    # The local runtime's stand-in database, when it names one, answers for the cluster endpoint.
    beside = cluster_id if cluster_id != config.target_cluster_id else None
    endpoint = database.target_endpoint(
        host, port, config.database_name, stand_in=ctx.settings.pg_dsn, beside=beside
    )
    credentials = secrets.master_credentials(config.master_credentials_secret_id, config.target_region)
    master_user = credentials.username or master_username or "postgres"
    return Master(endpoint, master_user, credentials.password, host, port)


def _connection(ctx: StepContext) -> Connection:
    master = master_target(ctx)
    users, warnings = config_resolver.load_db_users(ctx.settings)
    ctx.warnings.extend(warnings)
    config_resolver.refuse_master_as_user(users, master.user, ctx.settings.db_users_parameter)
    grants = [
        database.UserGrant(user=user, password=secrets.user_password(user, ctx.config.target_region))
        for user in users.users
    ]
    return Connection(
        master.endpoint, master.user, master.password, grants, master.advertised_host, master.advertised_port
    )


def setup_db_users(ctx: StepContext) -> Outcome:
    target = _connection(ctx)
    conn = database.connect(target.endpoint, target.master_user, target.master_password)
    try:
        # Many users: their roles are created on several connections at once (see database.setup_users).
        database.setup_users(
            conn,
            target.endpoint.dbname,
            target.grants,
            connect=lambda: database.connect(target.endpoint, target.master_user, target.master_password),
        )
    finally:
        conn.close()
    created = [config_resolver.describe_user(grant.user) for grant in target.grants]
    cluster_id = ctx.config.target_cluster_id
    return Done(
        message=f"Successfully set up {len(created)} users for cluster {cluster_id}",
        fields={
            "target_cluster_id": cluster_id,
            "cluster_endpoint": target.advertised_host,
            "cluster_port": target.advertised_port,
            "users_created": created,
        },
        next_step=sequence.after(Step.SETUP_DB_USERS, ctx.config),
        outputs=StepOutputs(users=[user["username"] for user in created]),
    )


def verify_restore(ctx: StepContext) -> Outcome:
    from functions.steps.masking import verify_masking  # it builds on this module's master_target

    target = _connection(ctx)
    conn = database.connect(target.endpoint, target.master_user, target.master_password)
    try:
        result = database.verify(conn, target.endpoint, target.grants, ctx.config.expected_tables)
        database.require(result)
        masked = verify_masking(ctx, conn)
    finally:
        conn.close()
    cluster_id = ctx.config.target_cluster_id
    schema_info: dict[str, Any] = {"schemas": result.schemas, "tables": result.tables}
    if masked:
        schema_info["masking"] = masked
    return Done(
        message=f"Successfully verified cluster {cluster_id}",
        fields={
            "target_cluster_id": cluster_id,
            "cluster_endpoint": target.advertised_host,
            "cluster_port": target.advertised_port,
            "schema_info": schema_info,
        },
        next_step=sequence.after(Step.VERIFY_RESTORE, ctx.config),
        outputs=StepOutputs(verified_tables=len(result.tables), verified_schemas=len(result.schemas)),
    )
