"""Where the DB steps connect: the cluster's endpoint, or the local runtime's stand-in that answers for it."""

from __future__ import annotations

from functions.database.connection import Endpoint, EndpointOverride, target_endpoint


def test_without_a_stand_in_the_steps_connect_to_the_cluster() -> None:
    # Given the cluster's endpoint and no stand-in (production)
    # When the steps' target is resolved
    endpoint = target_endpoint("db.cluster-x.eu-west-1.rds.amazonaws.com", 5433, "restored", stand_in=None)

    # Then it is the cluster's, with the restore's database
    assert endpoint == Endpoint("db.cluster-x.eu-west-1.rds.amazonaws.com", 5433, "restored")


def test_a_stand_in_answers_for_the_cluster_with_the_restores_database() -> None:
    # Given the local runtime's stand-in, named as AURORA_RESTORE_PG_DSN names it
    stand_in = "host=127.0.0.1 port=54329 dbname=other"

    # When the steps' target is resolved
    endpoint = target_endpoint(
        "db.cluster-x.eu-west-1.rds.amazonaws.com", 5432, "restored", stand_in=stand_in
    )

    # Then it is the stand-in's host and port, and still the restore's database (the DSN's is ignored)
    assert endpoint == Endpoint("127.0.0.1", 54329, "restored")


def test_a_keyword_the_stand_in_leaves_out_keeps_its_default() -> None:
    assert EndpointOverride.parse("port=6000") == EndpointOverride("127.0.0.1", 6000)
    assert EndpointOverride.parse("host=pg.local") == EndpointOverride("pg.local", 5432)
    assert EndpointOverride.parse("host=pg.local port=6000").endpoint("db") == Endpoint(
        "pg.local", 6000, "db"
    )


def test_an_empty_stand_in_is_none() -> None:
    # The settings turn an empty AURORA_RESTORE_PG_DSN into None; an empty string means none all the same
    assert target_endpoint("cluster", 5432, "restored", stand_in="") == Endpoint("cluster", 5432, "restored")
