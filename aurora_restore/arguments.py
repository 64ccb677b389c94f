"""The `aurora-restore` command line: its commands, their options and help texts (argparse)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from datetime import date
from typing import TypeAlias, get_args

from aurora_restore.operations import APPEAR_TIMEOUT
from aurora_restore.strategy_text import STRATEGIES
from schemas.common import Step
from schemas.state import OperationStatus

Handler = Callable[[argparse.Namespace], int]  # a command: its parsed arguments in, its exit code out
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # add_subparsers' answer
OPERATION_STATUSES: tuple[str, ...] = get_args(OperationStatus)  # `list --status`
STEP_NAMES = ", ".join(step.kebab for step in Step)
PROFILE_NAMES = "{profile names}"
# The RDS simulator's profiles (aurora_restore.local.rds_profiles.PROFILES, which a test holds this to):
# named here so that building the parser imports no simulator.
RDS_PROFILES = ("fast", "realistic")


class _Help(argparse.HelpFormatter):
    """Keeps kebab-case names (steps, profiles) whole when wrapping, and names the chaos profiles only when
    the help is shown: aurora_restore.chaos takes seconds to import (moto), which no command should pay for."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text and PROFILE_NAMES in text:
            from aurora_restore.chaos import EXTRA_PROFILES, PROFILES

            text = text.replace(PROFILE_NAMES, ", ".join([*PROFILES, *EXTRA_PROFILES]))
        return text


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _requested_date(value: str) -> date | str:
    """`start --date`: a day, or `latest` (the newest available snapshot, found by snapshot_check)."""
    return value if value == "latest" else _date(value)


def _limit(value: str) -> int | None:
    """`list --limit`: a count, 0 for all (None slices nothing off)."""
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a count (0 for all)")
    return limit or None


def build_parser(handlers: Mapping[str, Handler]) -> argparse.ArgumentParser:
    """The parser of every command; `handlers` names the function each one runs (`args.func`)."""
    parser = argparse.ArgumentParser(
        prog="aurora-restore",
        description="Refresh an Aurora PostgreSQL cluster from a source snapshot, on AWS or the local runtime.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # In the order `--help` lists them.
    for add in (
        _add_start,
        _add_plan,
        _add_list,
        _add_status,
        _add_watch,
        _add_timeline,
        _add_invoke,
        _add_config,
        _add_resume,
        _add_abort,
        _add_demo,
        _add_chaos,
        _add_local,
    ):
        add(sub, handlers)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    """The options of a command on an environment on AWS."""
    p.add_argument("--env", help="environment name (default: $AURORA_RESTORE_ENV)")
    p.add_argument("--region", help="region of the bus and state table (default: $AWS_REGION)")


def _add_start(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("start", help="start an operation (one put-events of RestoreRequested)")
    _common(p)
    p.add_argument(
        "--date",
        type=_requested_date,
        required=True,
        help="the day whose snapshot is restored (YYYY-MM-DD), or latest: the newest available snapshot",
    )
    p.add_argument("--operation-id", help="default: <env>-restore-<date>-<HHMMSS>")
    p.add_argument(
        "--override", action="append", metavar="KEY=VALUE", help="a configuration value, highest priority"
    )
    _strategy(p)
    p.set_defaults(func=handlers["start"])


def _add_plan(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser(
        "plan",
        help="every check a refresh makes and what it would do; changes nothing (exit 0: it would start)",
    )
    _common(p)
    p.add_argument(
        "--date",
        type=_requested_date,
        required=True,
        help="the day whose snapshot would be restored (YYYY-MM-DD), or latest: the newest available snapshot",
    )
    p.add_argument(
        "--override", action="append", metavar="KEY=VALUE", help="a configuration value, as for `start`"
    )
    _strategy(p)
    p.add_argument("--json", action="store_true", help="the plan as one JSON object")
    p.set_defaults(func=handlers["plan"])


def _strategy(p: argparse.ArgumentParser) -> None:
    """`--strategy replace|swap`: the request's `strategy` override (as `--override strategy=...`)."""
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="replace: delete the target, then restore under its name; swap: restore beside the target and"
        " switch by rename, the old target serving until the switch (default: the environment's configuration)",
    )


def _add_list(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("list", help="the environment's operations, newest first (exit 0)")
    _common(p)
    p.add_argument("--status", choices=OPERATION_STATUSES, help="only operations with this status")
    p.add_argument(
        "--limit", type=_limit, default=20, help="show at most this many, newest first (default 20; 0: all)"
    )
    p.add_argument("--json", action="store_true", help="one object per operation, with its error if any")
    p.set_defaults(func=handlers["list"])


def _add_status(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("status", help="show an operation (exit 1 if it failed)")
    _common(p)
    p.add_argument("operation_id")
    p.add_argument(
        "--json",
        action="store_true",
        help="the state item as JSON (a failed or aborted one with left_in_place)",
    )
    p.set_defaults(func=handlers["status"])


def _add_watch(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser(
        "watch", help="follow an operation until it ends (exit 0 if it completed, 1 if not; Ctrl-C: 130)"
    )
    _common(p)
    p.add_argument("operation_id")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up watching after this many seconds (the operation carries on)",
    )
    p.add_argument(
        "--appear-timeout",
        type=float,
        default=APPEAR_TIMEOUT,
        metavar="SECONDS",
        help=f"give up if the operation is not in the state table within this many seconds (default {APPEAR_TIMEOUT:g})",
    )
    p.set_defaults(func=handlers["watch"])


def _add_timeline(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser(
        "timeline",
        help="draw an operation as a standalone SVG: each step's runs and waits, the target's downtime",
    )
    _common(p)
    p.add_argument("operation_id")
    p.add_argument("--out", required=True, metavar="FILE.svg", help="write the SVG here (replaced if there)")
    p.set_defaults(func=handlers["timeline"])


def _add_invoke(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser(
        "invoke",
        help="invoke one step's function with the runbook's payload; its StepCompleted event then drives "
        "the rest of the restore (the choreography is always on)",
        description="Invoke one step's function with the runbook's payload and print its response. The "
        "choreography is always on: when the step succeeds, its StepCompleted event starts the next step, "
        "and so on to the end of the restore.",
        formatter_class=_Help,
    )
    _common(p)
    p.add_argument("step", help=f"the step: {STEP_NAMES}")
    p.add_argument("--payload", required=True, help="the JSON payload")
    p.set_defaults(func=handlers["invoke"])


def _add_config(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("config", help="configuration")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="resolved values and where each came from (no secrets)")
    _common(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=handlers["config show"])


def _add_resume(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("resume", help="continue a failed operation from its failed step")
    _common(p)
    p.add_argument("operation_id")
    p.set_defaults(func=handlers["resume"])


def _add_abort(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("abort", help="stop an operation, release its lease, leave the target as it is")
    _common(p)
    p.add_argument("operation_id")
    p.set_defaults(func=handlers["abort"])


def _rds(p: argparse.ArgumentParser) -> None:
    """The local runtime's RDS: `--rds fast|realistic`."""
    p.add_argument(
        "--rds",
        choices=RDS_PROFILES,
        default="fast",
        help="the simulated RDS: fast (every operation its set time, each event on time; the default) or "
        "realistic (RDS on a bad day: events late, early or twice, uneven copy progress, the cluster busy "
        "after its master password is set, slow renames, RDS's limits enforced)",
    )


def _add_demo(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("demo", help="run a whole restore on the embedded local runtime")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="give up if the restore has not ended this many seconds after it started (default 120)",
    )
    _rds(p)
    _strategy(p)
    p.set_defaults(func=handlers["demo"])


def _add_chaos(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser(
        "chaos",
        help="run operations under each fault profile on the local runtime",
        formatter_class=_Help,
    )
    p.add_argument("--operations", type=int, default=2, help="operations per profile")
    p.add_argument(
        "--profile", action="append", help=f"only this profile (repeatable): one of {PROFILE_NAMES}"
    )
    _rds(p)
    p.set_defaults(func=handlers["chaos"])


def _add_local(sub: Commands, handlers: Mapping[str, Handler]) -> None:
    p = sub.add_parser("local", help="the embedded local runtime")
    local_sub = p.add_subparsers(dest="local_command", required=True)
    serve = local_sub.add_parser("serve", help="run the local runtime until SIGINT or SIGTERM")
    serve.add_argument(
        "--env-file", required=True, help="write the `export` lines that reach the runtime here"
    )
    serve.add_argument("--log-file", help="the functions' JSON logs (default: kept in memory)")
    _rds(serve)
    serve.add_argument(
        "--source-account",
        type=_account_id,
        help="seed the source cluster and its snapshots into this other 12-digit account and configure a"
        " cross-account refresh from it (docs/cross-account.md)",
    )
    serve.set_defaults(func=handlers["local serve"])


def _account_id(value: str) -> str:
    if not (len(value) == 12 and value.isdigit()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 12-digit AWS account id")
    if value == "123456789012":
        raise argparse.ArgumentTypeError("123456789012 is the local target account: name another")
    return value
