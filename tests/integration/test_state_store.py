"""The state store's contract against DynamoDB (moto) and against the tests' MemoryStateStore, side by side:
conditional writes on version, the lease per target, the resource index and shared copies."""

from __future__ import annotations

import pytest
from fakes.memory_store import MemoryStateStore
from fakes.store_contract import StateStoreContract

from functions.state import DynamoStateStore
from functions.store import StateStore
from integration.world import STATE_TABLE, TARGET_REGION, create_state_table

pytestmark = pytest.mark.integration


class TestStateStore(StateStoreContract):
    @pytest.fixture(params=["dynamodb", "memory"])
    def store(self, request: pytest.FixtureRequest) -> StateStore:
        if request.param == "memory":
            return MemoryStateStore()
        request.getfixturevalue("mocked_aws")
        create_state_table()
        return DynamoStateStore(STATE_TABLE, TARGET_REGION)
