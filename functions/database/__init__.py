"""The database adapter (psycopg2): DB users' roles and grants, and verifying a restore from the catalog."""

from functions.database.connection import Endpoint, connect, target_endpoint
from functions.database.grants import UserGrant
from functions.database.scram import scram_verifier
from functions.database.setup import setup_users
from functions.database.verification import require, verify

__all__ = [
    "Endpoint",
    "UserGrant",
    "connect",
    "require",
    "scram_verifier",
    "setup_users",
    "target_endpoint",
    "verify",
]
