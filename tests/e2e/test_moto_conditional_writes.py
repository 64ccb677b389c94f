"""The local runtime's DynamoDB keeps a conditional write atomic, as DynamoDB does: of two writers that
read the same version, exactly one wins (moto's threaded server alone let both through now and then)."""

from __future__ import annotations

import sys
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from aurora_restore.local.motoserver import LocalMotoServer


def test_of_two_conditional_writes_on_one_version_exactly_one_wins() -> None:
    # Given the local runtime's moto server (its threads switching as often as they can, to bring out any
    # gap between a write's check and the write) and a table holding an item at version 0
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    server = LocalMotoServer()
    server.start()
    try:
        client = boto3.client(
            "dynamodb",
            region_name="us-west-2",
            endpoint_url=server.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 0}),
        )
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        lost_updates = 0
        history = {"S": "x" * 20_000}  # a state item's size: the write takes a while after its check
        for round_ in range(40):
            client.put_item(TableName="t", Item={"id": {"S": "op"}, "version": {"N": "0"}, "h": history})
            wins: list[str] = []
            start = threading.Barrier(2)

            def write(writer: str, start: threading.Barrier = start, wins: list[str] = wins) -> None:
                start.wait()
                try:
                    client.put_item(
                        TableName="t",
                        Item={"id": {"S": "op"}, "version": {"N": "1"}, "by": {"S": writer}, "h": history},
                        ConditionExpression="version = :expected",
                        ExpressionAttributeValues={":expected": {"N": "0"}},
                    )
                    wins.append(writer)
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"

            # When two writers that both read version 0 write version 1 at the same moment
            writers = [threading.Thread(target=write, args=(f"w{round_}-{n}",)) for n in range(2)]
            for thread in writers:
                thread.start()
            for thread in writers:
                thread.join(timeout=10)
            # Then exactly one of them wins, and the item is the winner's
            lost_updates += len(wins) != 1
            item = client.get_item(TableName="t", Key={"id": {"S": "op"}})["Item"]
            assert [item["by"]["S"]] == wins or len(wins) != 1
        assert lost_updates == 0
    finally:
        sys.setswitchinterval(switch)
        server.stop()
