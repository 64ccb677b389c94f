"""The `aurora-restore` command: start and watch operations on AWS or on the embedded local runtime.

Each command parses its arguments, calls `operations` (or the local runtime), and prints what `render`
makes of the result; this module holds the commands, their exit codes and the last word on an error
(the command line itself is `arguments`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aurora_restore import arguments, operations, render
from aurora_restore.arguments import STEP_NAMES
from aurora_restore.operations import ANNOUNCE_AFTER, APPEAR_TIMEOUT, OperatorError, Target
from functions.errors import shown
from schemas.common import Step
from schemas.state import TERMINAL_STATUSES, OperationState

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as a shell reports `cmd | head` for a command killed by it


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


# -- commands: each parses, calls operations, and prints what render makes of the result --------------------
def cmd_start(args: argparse.Namespace) -> int:
    target = _target(args)
    operation_id = operations.check_operation_id(
        args.operation_id or operations.default_operation_id(target.environment, args.date)
    )
    overrides = operations.with_strategy(operations.parse_overrides(args.override or []), args.strategy)
    operations.start(target, operation_id, args.date, overrides)
    print(render.started(target, operation_id, args.date))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from aurora_restore.plan import plan

    target = _target(args)
    overrides = operations.with_strategy(operations.parse_overrides(args.override or []), args.strategy)
    report = plan(target, args.date, overrides)
    print(render.plan_json(report) if args.json else render.plan_text(report))
    return EXIT_OK if report["would_start"] else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    state = operations.load(_target(args), args.operation_id)
    print(render.status_json(state) if args.json else render.status_text(state))
    return EXIT_OK if state.status != "failed" else EXIT_FAILED


def cmd_timeline(args: argparse.Namespace) -> int:
    path = operations.write_timeline(_target(args), args.operation_id, Path(args.out))
    print(path)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    target = _target(args)
    states = operations.list_operations(target, args.status)
    shown_states = states[: args.limit]
    if args.json:
        print(render.operations_json(shown_states))
    elif not states:
        print(render.no_operations(target, args.status))
    else:
        print(render.operations_table(shown_states))
        if len(states) > len(shown_states):
            print(render.more_operations(len(states) - len(shown_states), args.limit))
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
) -> OperationState | None:
    """Print each new step entry as it lands, until the operation ends; returns the final state.

    Returns the state as it is when `timeout` runs out first (not ended), and None when the operation did not
    appear within `appear_timeout` (or `timeout`). Prints to `out` (default: stdout)."""
    stream = out or sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return operations.watch(
        target,
        operation_id,
        on_entry=lambda entry, state: say(render.progress_line(entry, state.created_at)),
        on_slow_to_appear=lambda: say(render.waiting_to_appear(operation_id)),
        timeout=timeout,
        poll=poll,
        appear_timeout=appear_timeout,
        announce_after=announce_after,
    )


def cmd_watch(args: argparse.Namespace) -> int:
    target = _target(args)
    operation_id = operations.check_operation_id(args.operation_id)
    try:
        state = watch(target, operation_id, timeout=args.timeout, appear_timeout=args.appear_timeout)
    except KeyboardInterrupt:
        print(render.watch_stopped(operation_id), file=sys.stderr)
        return EXIT_INTERRUPTED
    if state is None:
        raise OperatorError(render.never_appeared(target, operation_id, args.timeout, args.appear_timeout))
    if state.status not in TERMINAL_STATUSES:
        raise OperatorError(render.still_going(state, args.timeout))
    print(render.watch_ended(state))
    return EXIT_OK if state.status == "completed" else EXIT_FAILED


def cmd_invoke(args: argparse.Namespace) -> int:
    try:
        step = Step(args.step.replace("-", "_"))
    except ValueError as exc:
        raise OperatorError(f"unknown step {args.step!r}; one of: {STEP_NAMES}") from exc
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise OperatorError(f"--payload is not JSON: {exc}") from exc
    body, succeeded = operations.invoke(_target(args), step, payload)
    print(render.step_response(body))
    return EXIT_OK if succeeded else EXIT_FAILED


def cmd_config_show(args: argparse.Namespace) -> int:
    document = operations.configuration(_target(args))
    print(json.dumps(document, indent=2) if args.json else render.configuration_text(document))
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    state, step = operations.resume(_target(args), args.operation_id)
    print(render.resumed(state.operation_id, step))
    return EXIT_OK


def cmd_abort(args: argparse.Namespace) -> int:
    target = _target(args)
    aborted = operations.abort_operation(target, args.operation_id)
    print(render.abort_outcome(aborted))
    print(render.abort_notice(aborted), file=sys.stdout if aborted.notified else sys.stderr)
    for line in render.left_after_abort(aborted, target.region):
        print(line)
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
        log_file = Path(args.log_file) if args.log_file else None
        serve(env_file, log_file, rds=args.rds, source_account=args.source_account)
    except PostgresUnavailable as exc:
        print(f"cannot start the local runtime: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from aurora_restore.demo import run_demo

    return run_demo(timeout=args.timeout, rds=args.rds, strategy=args.strategy)


def cmd_chaos(args: argparse.Namespace) -> int:
    from aurora_restore.chaos import run_chaos

    return run_chaos(operations_per_profile=args.operations, profiles=args.profile, rds=args.rds)


def build_parser() -> argparse.ArgumentParser:
    """The command line, each command bound to its handler (looked up here, when the parser is built)."""
    return arguments.build_parser(
        {
            "start": cmd_start,
            "plan": cmd_plan,
            "list": cmd_list,
            "status": cmd_status,
            "watch": cmd_watch,
            "timeline": cmd_timeline,
            "invoke": cmd_invoke,
            "config show": cmd_config_show,
            "resume": cmd_resume,
            "abort": cmd_abort,
            "demo": cmd_demo,
            "chaos": cmd_chaos,
            "local serve": cmd_local_serve,
        }
    )


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
