"""Build the one Lambda artifact (`make package`): functions/ and schemas/ plus their runtime dependencies,
botocore among them, installed from the lock (requirements/lambda.txt, hashes checked) for the Lambda
platform (arm64 by default), without boto3, tests or operator tooling, with bytecode compiled by the
runtime's Python when this machine has it.

    python -m infra.package [--architecture arm64|x86_64] [--python-version 3.12] [--output PATH]
                            [--no-bytecode] [--tracing]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "lambda"
ARTIFACT = BUILD / "aurora-restore-lambda.zip"
MANIFEST = BUILD / "aurora-restore-lambda.json"
# Our code: the step functions and the models they share. Never aurora_restore/ (operator tooling),
# tests/ or infra/.
CODE_PACKAGES = ("functions", "schemas")
# Not shipped: the functions never import boto3 (tests/unit/test_coldstart_imports.py), only botocore. botocore
# ships, at the version the tests run (the runtime's own copy varies by runtime version and region, and one
# without Scheduler's ActionAfterCompletion turned every wake-up into a warning): docs/architecture.md,
# "Cold start", says what that costs.
NOT_SHIPPED = frozenset({"boto3"})
# What `make package` builds for and the lock is resolved for; infra.settings makes them the stack's defaults.
DEFAULT_ARCHITECTURE: Final = "arm64"
DEFAULT_PYTHON_VERSION: Final = "3.12"
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
# Tracing (aurora-restore:tracing) needs the X-Ray SDK, which is otherwise left out.
TRACING_DEPENDENCIES = ("aws-xray-sdk>=2.12",)
# What ships, pinned with hashes by `make lock` (infra.lock): the same versions on every build.
LOCKS = {False: ROOT / "requirements" / "lambda.txt", True: ROOT / "requirements" / "lambda-tracing.txt"}
# Lambda takes a zip of at most 50 MB uploaded directly (as `pulumi up` does), 250 MB unzipped:
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html. botocore is about half the artifact.
DIRECT_UPLOAD_MAX_BYTES = 50 * 1024 * 1024
SKIPPED_PARTS = frozenset({"__pycache__", "tests", "test"})
SKIPPED_TOP_LEVEL = frozenset({"bin"})  # console scripts pip installs for the dependencies
FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # the same inputs give the same zip, so Pulumi sees no change
# Lambda's /var/task is read-only: without bytecode in the artifact, every cold start compiles every module
# it imports (pydantic, Powertools, ours) and cannot keep the result. Unchecked-hash .pyc files are used as
# they are, without reading the source or trusting zip timestamps; the artifact is rebuilt as a whole.
COMPILE_SCRIPT = """
import json, py_compile, sys
failed = []
for source, cfile, display in json.load(sys.stdin):
    try:
        py_compile.compile(source, cfile=cfile, dfile=display, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        failed.append(display)
print(json.dumps({"cache_tag": sys.implementation.cache_tag, "failed": failed}))
"""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml", tracing: bool = False) -> list[str]:
    """[project].dependencies minus what the functions never import (boto3)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    wanted = [item for item in dependencies if _name(item) not in NOT_SHIPPED]
    return wanted + (list(TRACING_DEPENDENCIES) if tracing else [])


def locked_versions(lock: Path) -> dict[str, str]:
    """Name -> version of each `name==version` line of a lock file."""
    pins = (re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", line) for line in lock.read_text().splitlines())
    return {_name(pin.group(1)): pin.group(2) for pin in pins if pin}


def unlocked(requirements: list[str], lock: Path) -> list[str]:
    """The requirements the lock does not pin, or pins to a version they do not allow: pyproject.toml changed
    since the last `make lock`."""
    from packaging.requirements import Requirement

    pinned = locked_versions(lock)
    return [
        item
        for item in requirements
        if _name(item) not in pinned or not Requirement(item).specifier.contains(pinned[_name(item)], True)
    ]


def install_dependencies(lock: Path, architecture: str, python_version: str, cache: Path = BUILD) -> Path:
    """pip install the lock, every file checked against its hash, for the Lambda platform into a cached
    directory (keyed by the lock's content)."""
    inputs = json.dumps([lock.read_text(), architecture, python_version])
    key = hashlib.sha256(inputs.encode()).hexdigest()[:12]
    target = cache / f"deps-{architecture}-py{python_version}-{key}"
    if (target / ".complete").exists():
        print(f"dependencies: reusing {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for platform in PLATFORMS[architecture]:
        command += ["--platform", platform]
    command += [
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--require-hashes",
        "--target",
        str(target),
        "--requirement",
        str(lock),
    ]
    shown = lock.relative_to(ROOT) if lock.is_relative_to(ROOT) else lock
    print(f"dependencies: pip install -r {shown} for {architecture} / Python {python_version}")
    subprocess.run(command, check=True)
    (target / ".complete").write_text(lock.read_text())
    return target


def _files(base: Path, start: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(start.rglob("*")):
        relative = path.relative_to(base)
        if path.is_dir() or SKIPPED_PARTS & set(relative.parts) or path.suffix in (".pyc", ".pyo"):
            continue
        if path.name == ".complete" or relative.parts[0] in SKIPPED_TOP_LEVEL:
            continue
        yield path, relative.as_posix()


def code_files(root: Path = ROOT) -> Iterator[tuple[Path, str]]:
    """functions/ and schemas/: .py modules and schemas/jsonschema/*.json."""
    for package in CODE_PACKAGES:
        for path, name in _files(root, root / package):
            if path.suffix in (".py", ".json", ".typed"):
                yield path, name


def find_interpreter(python_version: str) -> str | None:
    """A Python `python_version` to compile the artifact's bytecode with (bytecode is per minor version):
    this one, `python3.12` on PATH, or one pyenv installed. None when the machine has none."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return sys.executable
    candidates = [shutil.which(f"python{python_version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates += [str(path) for path in sorted(pyenv.glob(f"{python_version}.*/bin/python{python_version}"))]
    for candidate in candidates:
        if candidate and _reports_version(candidate, python_version):
            return candidate
    return None


def _reports_version(interpreter: str, python_version: str) -> bool:
    try:
        answer = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return answer.returncode == 0 and answer.stdout.strip() == python_version


def compile_bytecode(interpreter: str, sources: list[tuple[Path, str]], out: Path) -> tuple[str, list[str]]:
    """Compile each (source, archive name) with `interpreter` into out/<dir>/__pycache__/<name>.<tag>.pyc.
    Returns the cache tag (cpython-312) and the names that did not compile (they ship as source only).
    PYTHONHASHSEED=0: set constants are marshalled in hash order, and the zip must not change by chance."""
    tag = subprocess.run(
        [interpreter, "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    jobs = []
    for source, name in sources:
        directory, _, filename = name.rpartition("/")
        cfile = out / directory / "__pycache__" / f"{filename.removesuffix('.py')}.{tag}.pyc"
        jobs.append((str(source), str(cfile), name))
    answer = subprocess.run(
        [interpreter, "-c", COMPILE_SCRIPT],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    return str(result["cache_tag"]), list(result["failed"])


def bytecode_files(out: Path) -> list[tuple[Path, str]]:
    return [(path, path.relative_to(out).as_posix()) for path in sorted(out.rglob("*.pyc"))]


def write_zip(
    output: Path, dependencies: Path, root: Path = ROOT, bytecode: list[tuple[Path, str]] | None = None
) -> int:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    entries = [*_files(dependencies, dependencies), *code_files(root), *(bytecode or [])]
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path, name in sorted(entries, key=lambda item: item[1]):
            info = zipfile.ZipInfo(name, FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Keep the executable bit of shared objects and scripts; everything readable.
            info.external_attr = ((path.stat().st_mode & 0o755) | 0o644) << 16
            archive.writestr(info, path.read_bytes())
    partial.replace(output)
    return len(entries)


def build(
    architecture: str = DEFAULT_ARCHITECTURE,
    python_version: str = DEFAULT_PYTHON_VERSION,
    output: Path = ARTIFACT,
    tracing: bool = False,
    bytecode: bool = True,
) -> Path:
    if architecture not in PLATFORMS:
        raise SystemExit(f"architecture must be one of {', '.join(PLATFORMS)}")
    requirements = runtime_requirements(tracing=tracing)
    lock = LOCKS[tracing]
    stale = unlocked(requirements, lock) if lock.exists() else requirements
    if stale:
        raise SystemExit(f"{lock.relative_to(ROOT)} does not pin {', '.join(stale)}: run `make lock`")
    dependencies = install_dependencies(lock, architecture, python_version)
    with tempfile.TemporaryDirectory(prefix="aurora-restore-bytecode-") as scratch:
        compiled, tag = _bytecode(bytecode, python_version, dependencies, Path(scratch))
        print(f"artifact: writing {output}")
        count = write_zip(output, dependencies, bytecode=compiled)
    manifest = output.with_suffix(".json")
    manifest.write_text(
        json.dumps(
            {
                "architecture": architecture,
                "python_version": python_version,
                "requirements": requirements,
                "lock": lock.relative_to(ROOT).as_posix(),
                "locked": [f"{name}=={version}" for name, version in sorted(locked_versions(lock).items())],
                "bytecode": tag,
                "sha256": hashlib.sha256(output.read_bytes()).hexdigest(),
            },
            indent=2,
        )
        + "\n"
    )
    size = output.stat().st_size
    print(
        f"artifact: {count} files, {size / 1_048_576:.1f} MiB zipped ({architecture}, Python {python_version})"
    )
    refuse_oversize(output, size)
    return output


def refuse_oversize(output: Path, size: int) -> None:
    """Refused here, not by `pulumi up`, when Lambda would refuse the zip."""
    if size > DIRECT_UPLOAD_MAX_BYTES:
        raise SystemExit(
            f"{output}: {size / 1_048_576:.1f} MiB zipped, over the {DIRECT_UPLOAD_MAX_BYTES // 1_048_576} MiB"
            " Lambda takes uploaded directly"
        )


def _bytecode(
    wanted: bool, python_version: str, dependencies: Path, scratch: Path
) -> tuple[list[tuple[Path, str]], str | None]:
    """The artifact's .pyc files (compiled into `scratch`) and their cache tag; none when not wanted or when
    this machine has no Python `python_version` (said so, with what it costs)."""
    if not wanted:
        print("bytecode: none (--no-bytecode): each cold start compiles the modules it imports")
        return [], None
    interpreter = find_interpreter(python_version)
    if interpreter is None:
        print(
            f"bytecode: none: no Python {python_version} here (python{python_version} on PATH or pyenv's) to "
            "compile it with, so each cold start compiles the modules it imports (~200 ms more); "
            f"install Python {python_version} and package again"
        )
        return [], None
    sources = [
        (path, name)
        for path, name in [*_files(dependencies, dependencies), *code_files()]
        if name.endswith(".py")
    ]
    print(f"bytecode: compiling {len(sources)} modules with {interpreter} ...")
    tag, failed = compile_bytecode(interpreter, sources, scratch)
    if failed:
        print(f"bytecode: {len(failed)} modules did not compile and ship as source only: {failed[:5]}")
    return bytecode_files(scratch), tag


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default=DEFAULT_ARCHITECTURE)
    parser.add_argument(
        "--python-version", default=DEFAULT_PYTHON_VERSION, help="the Lambda runtime's Python (3.12, 3.13)"
    )
    parser.add_argument("--output", type=Path, default=ARTIFACT)
    parser.add_argument("--tracing", action="store_true", help="add the X-Ray SDK (aurora-restore:tracing)")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="ship sources only (each cold start compiles them)"
    )
    args = parser.parse_args(argv)
    build(args.architecture, args.python_version, args.output, args.tracing, bytecode=not args.no_bytecode)


if __name__ == "__main__":
    main()
