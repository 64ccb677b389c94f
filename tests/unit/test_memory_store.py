"""MemoryStateStore, the engine's state store in unit tests: the state store's contract, and the same
methods as the DynamoDB store (tests/integration/test_state_store.py runs the contract on both)."""

from __future__ import annotations

import inspect

import pytest
from fakes.memory_store import MemoryStateStore
from fakes.store_contract import StateStoreContract

from functions.state import DynamoStateStore
from functions.store import StateStore

PROTOCOL_METHODS = sorted(
    name for name, member in vars(StateStore).items() if callable(member) and not name.startswith("_")
)


class TestMemoryStateStore(StateStoreContract):
    @pytest.fixture
    def store(self) -> MemoryStateStore:
        return MemoryStateStore()


def test_the_protocol_lists_every_method_of_the_dynamodb_store() -> None:
    public = sorted(
        name
        for name, member in vars(DynamoStateStore).items()
        if inspect.isfunction(member) and not name.startswith("_")
    )
    assert PROTOCOL_METHODS == public


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_the_fake_takes_what_the_dynamodb_store_takes(name: str) -> None:
    # Same parameters, defaults and annotations: a call that works on one works on the other
    real = inspect.signature(getattr(DynamoStateStore, name))
    assert inspect.signature(getattr(MemoryStateStore, name)) == real
    assert list(inspect.signature(getattr(StateStore, name)).parameters) == list(real.parameters)
