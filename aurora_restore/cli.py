"""The `aurora-restore` command: start and watch operations on AWS or on the embedded local runtime."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from aurora_restore import operations, render
from aurora_restore.operations import OperatorError, Target
from schemas.common import Step
from schemas.state import TERMINAL_STATUSES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _environment(args: argparse.Namespace) -> str:
    env = getattr(args, "env", None) or os.environ.get("AURORA_RESTORE_ENV")
    if not env:
        raise OperatorError("no environment: pass --env ENV or set AURORA_RESTORE_ENV")
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
    operation_id = args.operation_id or operations.default_operation_id(target.environment, args.date)
    overrides = operations.parse_overrides(args.override or [])
    operations.start(target, operation_id, args.date, overrides)
    print(f"started {operation_id}: RestoreRequested for {args.date} on {target.bus} ({target.region})")
    print(f"watch it with: aurora-restore watch {operation_id}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    state = operations.load(_target(args), args.operation_id)
    if args.json:
        print(state.model_dump_json(indent=2, exclude={"outbox"}))
    else:
        print(render.status_text(state))
    return EXIT_OK if state.status != "failed" else EXIT_FAILED


def watch(
    target: Target, operation_id: str, *, timeout: float | None = None, poll: float = 0.5, out: Any = None
) -> Any:
    """Print each new step entry as it lands, until the operation ends; returns the final state."""
    out = out or sys.stdout
    store = target.store()
    seen = 0
    started = time.monotonic()
    announced = False
    while True:
        state = store.get(operation_id)
        if state is None:
            if not announced:
                print(f"waiting for {operation_id} to appear ...", file=out, flush=True)
                announced = True
        else:
            for entry in state.history[seen:]:
                print(render.progress_line(entry, state.created_at), file=out, flush=True)
            seen = len(state.history)
            if state.status in TERMINAL_STATUSES and not state.outbox:
                return state
        if timeout is not None and time.monotonic() - started > timeout:
            return state
        time.sleep(poll)


def cmd_watch(args: argparse.Namespace) -> int:
    state = watch(_target(args), args.operation_id, timeout=args.timeout)
    if state is None:
        raise OperatorError(f"operation {args.operation_id} did not appear")
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
        raise OperatorError(
            f"unknown step {args.step!r}; one of: {', '.join(s.value for s in Step)}"
        ) from exc
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
    resolved = resolver.resolve(settings)
    users, warnings = resolver.load_db_users(settings)
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
    state = operations.abort(_target(args), args.operation_id)
    cluster = state.config.get("target_cluster_id", "the target")
    print(f"aborted {state.operation_id}: lease on {cluster} released, the cluster is left as it is")
    return EXIT_OK


def cmd_local_serve(args: argparse.Namespace) -> int:
    from aurora_restore.local.runtime import LocalRuntime, RuntimeOptions

    env_file = Path(args.env_file)
    runtime = LocalRuntime(RuntimeOptions(log_path=Path(args.log_file) if args.log_file else None))
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    runtime.start()
    try:
        # Quoted for the shell that sources the file (the DSN holds spaces).
        lines = [f"export {name}={shlex.quote(value)}" for name, value in runtime.environment().items()]
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text("\n".join(lines) + "\n")
        print(
            f"local runtime for {runtime.options.environment}: moto {runtime.moto.url}, "
            f"PostgreSQL {runtime.environment()['AURORA_RESTORE_PG_DSN']}; environment in {env_file}",
            flush=True,
        )
        print("ready", flush=True)
        stop.wait()
    finally:
        runtime.stop()
        print("stopped", flush=True)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from aurora_restore.demo import run_demo

    return run_demo(timeout=args.timeout)


def cmd_chaos(args: argparse.Namespace) -> int:
    from aurora_restore.chaos import run_chaos

    return run_chaos(operations_per_profile=args.operations, profiles=args.profile)


# -- parser ---------------------------------------------------------------------------------------------------
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

    p = sub.add_parser("status", help="show an operation")
    common(p)
    p.add_argument("operation_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("watch", help="follow an operation until it ends")
    common(p)
    p.add_argument("operation_id")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("invoke", help="invoke one step directly with the runbook's payload")
    common(p)
    p.add_argument("step", help="a step: snapshot_check, copy-snapshot, ...")
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
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("chaos", help="run operations under each fault profile on the local runtime")
    p.add_argument("--operations", type=int, default=2, help="operations per profile")
    p.add_argument("--profile", action="append", help="only these profiles")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except OperatorError as exc:
        print(f"aurora-restore: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last word to the operator is a sentence, not a traceback
        from botocore.exceptions import BotoCoreError, ClientError

        from functions.errors import StepError

        if isinstance(exc, StepError | ClientError | BotoCoreError):
            print(f"aurora-restore: {exc}", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
