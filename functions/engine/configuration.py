"""The configuration a step runs with: resolved from its sources, with what the operation fixed kept fixed."""

from __future__ import annotations

from functions import config as config_resolver
from functions.engine.admission import notifies_failure
from functions.engine.triggers import Trigger
from functions.errors import ConfigError, InvalidRequest
from functions.observability import logger
from functions.settings import Settings
from schemas.common import Step
from schemas.config import environment_only_problem
from schemas.state import OperationState

# What an operation acts on, fixed once it is recorded: a later step's direct payload may change the rest of
# the configuration for that step (event > state), never these. Else restore_snapshot would restore into a
# cluster the operation holds no lease on, while the one it deleted stayed gone.
FIXED_FIELDS = ("source_region", "target_region", "source_cluster_id", "target_cluster_id")


def resolve_for_step(
    settings: Settings, step: Step, state: OperationState, trigger: Trigger
) -> config_resolver.ResolvedConfig:
    """The first step resolves all five sources; later steps the event over the recorded state, except
    FIXED_FIELDS, which a later direct payload may not change."""
    event_values = dict(state.overrides)
    if trigger.is_direct:
        event_values.update(trigger.payload)
    if state.config:
        return _over_recorded(settings, step, state, event_values)
    try:
        return config_resolver.resolve(settings, event_values=event_values)
    except ConfigError:
        if not notifies_failure(step, state, trigger) or not event_values:
            raise
        # The failure being notified can be this very configuration (a bad override refused at the first
        # step): people are still told, with the configuration the environment and SSM give.
        logger.warning("notifying the failure with the configuration from the environment and SSM")
        return config_resolver.resolve(settings)


def _over_recorded(
    settings: Settings, step: Step, state: OperationState, event_values: dict[str, object]
) -> config_resolver.ResolvedConfig:
    resolved = config_resolver.resolve(
        settings, event_values=event_values, state_values=state.config, lower_layers=False
    )
    for name, source in state.config_sources.items():
        if resolved.sources.get(name) == "state":
            resolved.sources[name] = f"state ({source})"
    refused = environment_only_problem(event_values)
    if refused:
        raise InvalidRequest(f"{step.value}: {refused}")
    for name in FIXED_FIELDS:
        recorded = state.config.get(name)
        if recorded is not None and getattr(resolved.config, name) != recorded:
            raise InvalidRequest(
                f"{name} is {recorded} for this operation, fixed when it started:"
                f" {step.value} does not act on another (start a new operation for that)"
            )
    return resolved
