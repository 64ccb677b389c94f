"""The `aurora-restore` command: start and watch operations on AWS or on the embedded local runtime."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, get_args

from aurora_restore import operations, render
from aurora_restore.operations import OperatorError, Target
from functions.errors import shown
from schemas.common import Step
from schemas.state import TERMINAL_STATUSES, OperationStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as a shell reports `cmd | head` for a command killed by it
# `watch`: how long an operation may take to appear in the state table before the watch gives up; and how
# long before it says it is waiting for it (its first step writes it a moment after the put-events).
APPEAR_TIMEOUT = 60.0
ANNOUNCE_AFTER = 2.0
OPERATION_STATUSES: tuple[str, ...] = get_args(OperationStatus)  # `list --status`


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _limit(value: str) -> int | None:
    """`list --limit`: a count, 0 for all (None slices nothing off)."""
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a count (0 for all)")
    return limit or None


def _environment(args: argparse.Namespace) -> str:
    from functions.settings import ENVIRONMENT_MAX_CHARS, ENVIRONMENT_PATTERN

    env = getattr(args, "env", None) or os.environ.get("AURORA_RESTORE_ENV")
    if not env:
        raise OperatorError("no environment: pass --env ENV or set AURORA_RESTORE_ENV")
    if not re.match(ENVIRONMENT_PATTERN, str(env)):
        raise OperatorError(
            f"environment {shown(env)} is not valid: lower-case letters, digits and hyphens, starting with a"
            f" letter or digit, at most {ENVIRONMENT_MAX_CHARS} characters (the stack's name, as in Pulumi.<env>.yaml)"
        )
    return str(env)


def _region(args: argparse.Namespace) -> str:
    region = (
        getattr(args, "region", None) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        raise OperatorError(
            "no region: pass --region or set AWS_REGION (the target region, where the bus lives)"
        )
    return str(region)


def _target(args: argparse.Namespace) -> Target:
    return Target(_environment(args), _region(args))


# -- commands -------------------------------------------------------------------------------------------------
def cmd_start(args: argparse.Namespace) -> int:
    target = _target(args)
    operation_id = operations.check_operation_id(
        args.operation_id or operations.default_operation_id(target.environment, args.date)
    )
    overrides = operations.parse_overrides(args.override or [])
    operations.start(target, operation_id, args.date, overrides)
    print(f"started {operation_id}: RestoreRequested for {args.date} on {target.bus} ({target.region})")
    print(f"watch it with: aurora-restore watch {operation_id}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    state = operations.load(_target(args), args.operation_id)
    if args.json:
        document = state.model_dump(mode="json", exclude={"outbox"})
        if state.status in ("failed", "aborted"):
            from functions.runner import left_in_place

            document["left_in_place"] = left_in_place(state)
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(render.status_text(state))
    return EXIT_OK if state.status != "failed" else EXIT_FAILED


def cmd_list(args: argparse.Namespace) -> int:
    target = _target(args)
    states = operations.list_operations(target, args.status)
    shown_states = states[: args.limit]
    if args.json:
        rows = [
            {
                "operation_id": state.operation_id,
                "status": state.status,
                "step": render.step_of(state),
                "target_cluster_id": render.target_of(state),
                "target_date": state.target_date.isoformat(),
                "created_at": state.created_at.isoformat(),
                "updated_at": state.updated_at.isoformat(),
                "error": state.error.model_dump(mode="json") if state.error else None,
            }
            for state in shown_states
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not states:
        kind = f"{args.status} " if args.status else ""
        print(f"no {kind}operations in {target.table} ({target.region})")
        return EXIT_OK
    print(render.operations_table(shown_states))
    if len(states) > len(shown_states):
        print(f"... and {len(states) - len(shown_states)} older (--limit {args.limit}; --limit 0 for all)")
    return EXIT_OK


def watch(
    target: Target,
    operation_id: str,
    *,
    timeout: float | None = None,
    poll: float = 0.5,
    out: Any = None,
    appear_timeout: float | None = APPEAR_TIMEOUT,
    announce_after: float = ANNOUNCE_AFTER,
) -> Any:
    """Print each new step entry as it lands, until the operation ends; returns the final state.

    Returns the state as it is when `timeout` runs out first (not ended), and None when the operation did not
    appear within `appear_timeout` (or `timeout`)."""
    out = out or sys.stdout
    store = target.store()
    seen = 0
    started = time.monotonic()
    announced = False
    while True:
        state = store.get(operation_id)
        elapsed = time.monotonic() - started
        if state is None:
            if not announced and elapsed >= announce_after:
                print(f"waiting for {operation_id} to appear ...", file=out, flush=True)
                announced = True
            if appear_timeout is not None and elapsed > appear_timeout:
                return None
        else:
            for entry in state.history[seen:]:
                print(render.progress_line(entry, state.created_at), file=out, flush=True)
            seen = len(state.history)
            if state.status in TERMINAL_STATUSES and not state.outbox:
                return state
        if timeout is not None and elapsed > timeout:
            return state
        time.sleep(poll)


def cmd_watch(args: argparse.Namespace) -> int:
    target = _target(args)
    operation_id = operations.check_operation_id(args.operation_id)
    again = f"`aurora-restore watch {operation_id}` to follow it again"
    try:
        state = watch(target, operation_id, timeout=args.timeout, appear_timeout=args.appear_timeout)
    except KeyboardInterrupt:
        print(f"\nstopped watching {operation_id}; the operation carries on: {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if state is None:
        waited = min(t for t in (args.timeout, args.appear_timeout, float("inf")) if t is not None)
        raise OperatorError(
            f"operation {operation_id} did not appear in {target.table} ({target.region}) within {waited:g} s: "
            "check the operation id, --env and --region (`aurora-restore start` printed the id)"
        )
    if state.status not in TERMINAL_STATUSES:
        raise OperatorError(
            f"gave up watching after {args.timeout:g} s; {operation_id} is still {state.status}: {again}"
        )
    print(f"operation {state.operation_id} is {state.status}")
    if state.error:
        print(f"  {state.failed_step}: {state.error.type}: {state.error.message}")
    return EXIT_OK if state.status == "completed" else EXIT_FAILED


def cmd_invoke(args: argparse.Namespace) -> int:
    from functions import aws
    from functions.settings import function_name

    try:
        step = Step(args.step.replace("-", "_"))
    except ValueError as exc:
        raise OperatorError(f"unknown step {args.step!r}; one of: {STEP_NAMES}") from exc
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise OperatorError(f"--payload is not JSON: {exc}") from exc
    name = function_name(step.value, _environment(args))
    answer = aws.client("lambda", _region(args)).invoke(
        FunctionName=name, Payload=json.dumps(payload).encode()
    )
    body = json.loads(answer["Payload"].read() or b"null")
    print(json.dumps(body, indent=2))
    if answer.get("FunctionError") or not isinstance(body, dict) or body.get("status") != "success":
        return EXIT_FAILED
    return EXIT_OK


def cmd_config_show(args: argparse.Namespace) -> int:
    from functions import config as resolver
    from functions.settings import get_settings

    os.environ["AURORA_RESTORE_ENV"] = _environment(args)
    os.environ.setdefault("AWS_REGION", _region(args))
    get_settings.cache_clear()
    settings = get_settings()
    # The environment layer is the functions' own environment (their Lambda configuration, or the shell
    # `local serve` runs in), never this shell's: shown as set here, it was not what an operation used.
    resolved = resolver.resolve(settings, environ={})
    users, warnings = resolver.load_db_users(settings)
    here = list(resolver.environment_variables().values())
    if here:
        warnings.append(
            f"ignored: {', '.join(here)} set in this shell; the environment layer is the functions' own"
            " environment (their Lambda configuration, or `local serve`'s shell)"
        )
    document: dict[str, Any] = {
        "environment": settings.environment,
        "parameters": {"config": settings.config_parameter, "db_users": settings.db_users_parameter},
        "config": {
            name: {"value": value, "source": resolved.sources.get(name, "default")}
            for name, value in resolved.config.model_dump(mode="json").items()
        },
        "db_users": [
            {
                "username": user.username,
                "privileges": list(user.privileges),
                "password": f"secret {user.password_secret_id}"
                if user.password_secret_id
                else "literal (hidden)",
            }
            for user in users.users
        ],
        "warnings": resolved.warnings + warnings,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return EXIT_OK
    width = max(len(name) for name in document["config"])
    print(f"configuration of {settings.environment} ({settings.config_parameter})")
    for name, item in document["config"].items():
        print(f"  {name:<{width}}  {json.dumps(item['value']):<60}  [{item['source']}]")
    print(f"db users ({settings.db_users_parameter})")
    for user in document["db_users"]:
        print(
            f"  {user['username']:<{width}}  {', '.join(user['privileges']):<60}  password: {user['password']}"
        )
    for warning in document["warnings"]:
        print(f"warning: {warning}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    state, step = operations.resume(_target(args), args.operation_id)
    print(f"resumed {state.operation_id} at {step}; watch it with: aurora-restore watch {state.operation_id}")
    return EXIT_OK


def cmd_abort(args: argparse.Namespace) -> int:
    target = _target(args)
    aborted = operations.abort_operation(target, args.operation_id)
    state = aborted.state
    region = state.config.get("target_region", target.region)
    cluster = state.config.get("target_cluster_id")
    if aborted.lease_released:
        said = f"lease on {aborted.lease_released} released, the cluster is left as it is"
    elif cluster:
        said = f"it held no lease on {cluster} (nothing to release), the cluster is left as it is"
    else:
        said = "it had no target cluster yet (no lease to release)"
    print(f"aborted {state.operation_id}: {said}")
    if aborted.notified:
        print(
            f"subscribers told: the abort was sent to the notification topic and queue (SNS {aborted.notified})"
        )
    else:
        print(f"warning: subscribers were not told of the abort: {aborted.notice_error}", file=sys.stderr)
    if state.outputs.get("deletion_started"):
        print(
            f"the deletion of {cluster} had started: what stands under its name may be partly deleted or"
            " half restored; a new `start` deletes it and restores anew"
        )
    if "restore_snapshot" in state.results and not state.outputs.get("master_password_set"):
        # check_restore_status sets the target's own master password once the cluster is available.
        print(
            f"the restored {cluster} keeps the source cluster's master password (it was not reset yet): reset it"
            f" before anyone connects: aws rds modify-db-cluster --db-cluster-identifier {cluster}"
            f" --master-user-password '<new password>' --apply-immediately --region {region}"
        )
    if aborted.copy_left and aborted.copy_still_used:
        print(
            f"the snapshot copy {aborted.copy_left} is left to the {aborted.copy_still_used} other operation(s)"
            " using it: the last one's cleanup deletes it"
        )
    elif aborted.copy_left:
        print(
            f"the snapshot copy {aborted.copy_left} is left in {region};"
            " delete it when no longer wanted: aws rds delete-db-cluster-snapshot"
            f" --db-cluster-snapshot-identifier {aborted.copy_left} --region {region}"
        )
    return EXIT_OK


def cmd_local_serve(args: argparse.Namespace) -> int:
    from aurora_restore.local.postgres import PostgresUnavailable
    from aurora_restore.local.serve import serve

    env_file = Path(args.env_file)
    if env_file.is_dir():
        # Found before the runtime starts (some seconds), not when the file is written after it.
        print(f"aurora-restore: --env-file {env_file} is a directory: name a file to write", file=sys.stderr)
        return EXIT_USAGE
    try:
        serve(env_file, Path(args.log_file) if args.log_file else None)
    except PostgresUnavailable as exc:
        print(f"cannot start the local runtime: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from aurora_restore.demo import run_demo

    return run_demo(timeout=args.timeout)


def cmd_chaos(args: argparse.Namespace) -> int:
    from aurora_restore.chaos import run_chaos

    return run_chaos(operations_per_profile=args.operations, profiles=args.profile)


# -- parser ---------------------------------------------------------------------------------------------------
STEP_NAMES = ", ".join(step.kebab for step in Step)
PROFILE_NAMES = "{profile names}"


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aurora-restore",
        description="Refresh an Aurora PostgreSQL cluster from a source snapshot, on AWS or the local runtime.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--env", help="environment name (default: $AURORA_RESTORE_ENV)")
        p.add_argument("--region", help="region of the bus and state table (default: $AWS_REGION)")

    p = sub.add_parser("start", help="start an operation (one put-events of RestoreRequested)")
    common(p)
    p.add_argument(
        "--date", type=_date, required=True, help="the day whose snapshot is restored (YYYY-MM-DD)"
    )
    p.add_argument("--operation-id", help="default: <env>-restore-<date>-<HHMMSS>")
    p.add_argument(
        "--override", action="append", metavar="KEY=VALUE", help="a configuration value, highest priority"
    )
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("list", help="the environment's operations, newest first (exit 0)")
    common(p)
    p.add_argument("--status", choices=OPERATION_STATUSES, help="only operations with this status")
    p.add_argument(
        "--limit", type=_limit, default=20, help="show at most this many, newest first (default 20; 0: all)"
    )
    p.add_argument("--json", action="store_true", help="one object per operation, with its error if any")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("status", help="show an operation (exit 1 if it failed)")
    common(p)
    p.add_argument("operation_id")
    p.add_argument(
        "--json",
        action="store_true",
        help="the state item as JSON (a failed or aborted one with left_in_place)",
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "watch", help="follow an operation until it ends (exit 0 if it completed, 1 if not; Ctrl-C: 130)"
    )
    common(p)
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
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "invoke",
        help="invoke one step's function with the runbook's payload; its StepCompleted event then drives "
        "the rest of the restore (the choreography is always on)",
        description="Invoke one step's function with the runbook's payload and print its response. The "
        "choreography is always on: when the step succeeds, its StepCompleted event starts the next step, "
        "and so on to the end of the restore.",
        formatter_class=_Help,
    )
    common(p)
    p.add_argument("step", help=f"the step: {STEP_NAMES}")
    p.add_argument("--payload", required=True, help="the JSON payload")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("config", help="configuration")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="resolved values and where each came from (no secrets)")
    common(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_config_show)

    p = sub.add_parser("resume", help="continue a failed operation from its failed step")
    common(p)
    p.add_argument("operation_id")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("abort", help="stop an operation, release its lease, leave the target as it is")
    common(p)
    p.add_argument("operation_id")
    p.set_defaults(func=cmd_abort)

    p = sub.add_parser("demo", help="run a whole restore on the embedded local runtime")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="give up if the restore has not ended this many seconds after it started (default 120)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "chaos",
        help="run operations under each fault profile on the local runtime",
        formatter_class=_Help,
    )
    p.add_argument("--operations", type=int, default=2, help="operations per profile")
    p.add_argument(
        "--profile", action="append", help=f"only this profile (repeatable): one of {PROFILE_NAMES}"
    )
    p.set_defaults(func=cmd_chaos)

    p = sub.add_parser("local", help="the embedded local runtime")
    local_sub = p.add_subparsers(dest="local_command", required=True)
    serve = local_sub.add_parser("serve", help="run the local runtime until SIGINT or SIGTERM")
    serve.add_argument(
        "--env-file", required=True, help="write the `export` lines that reach the runtime here"
    )
    serve.add_argument("--log-file", help="the functions' JSON logs (default: kept in memory)")
    serve.set_defaults(func=cmd_local_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a reader that went away (`| head`) shows here, not at interpreter exit
    except BrokenPipeError:
        # Nobody reads any more: say nothing further, and let nothing flush into the closed pipe at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except OperatorError as exc:
        print(f"aurora-restore: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the last word to the operator is a sentence, not a traceback
        from botocore.exceptions import BotoCoreError, ClientError

        from functions.errors import PublishError, StepError

        missing = _missing_resource(exc, args)
        if missing is not None:
            print(f"aurora-restore: {missing}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(exc, PublishError):
            codes = sorted({str(entry.get("ErrorCode")) for entry in exc.failed})
            print(
                f"aurora-restore: the event bus refused the event ({', '.join(codes)}); nothing was started",
                file=sys.stderr,
            )
            return EXIT_FAILED
        if isinstance(exc, StepError | ClientError | BotoCoreError):
            print(f"aurora-restore: {exc}", file=sys.stderr)
            return EXIT_FAILED
        raise


def _missing_resource(exc: Exception, args: argparse.Namespace) -> OperatorError | None:
    """AWS's "resource not found" for the environment's state table or bus, as the operator's sentence."""
    if not hasattr(args, "env"):
        return None  # demo, chaos, local serve: no environment on AWS
    try:
        target = _target(args)
    except OperatorError:
        return None
    return operations.missing_resource(exc, target)


if __name__ == "__main__":
    sys.exit(main())
