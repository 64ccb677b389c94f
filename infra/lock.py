"""`make lock`: pin every dependency with its hashes in requirements/*.txt, resolved by uv from pyproject.toml.

    python -m infra.lock [--upgrade]

- requirements/dev.txt: the project with every extra (dev, infra, local), for any platform and every
  Python the project allows; `make dev` installs it with --require-hashes.
- requirements/local.txt: the project and its local runtime (`make demo`), at dev.txt's versions.
- requirements/lambda.txt, lambda-tracing.txt: what the Lambda artifact ships (infra.package), for the
  Lambda platform and Python, at dev.txt's versions (the tests run what ships).

Without --upgrade each pin already in a lock stays unless pyproject.toml no longer allows it; with it,
every pin moves to the newest release allowed. Only this needs uv; installing from a lock needs only pip.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from infra.package import DEFAULT_PYTHON_VERSION, LOCKS, ROOT, runtime_requirements

REQUIREMENTS = ROOT / "requirements"
DEV_LOCK = REQUIREMENTS / "dev.txt"
LOCAL_LOCK = REQUIREMENTS / "local.txt"
# uv's name of the newest platform tag infra.package installs for each Lambda architecture (psycopg2-binary
# has no manylinux2014 wheels for aarch64); Lambda's Python 3.12 and 3.13 runtimes have glibc 2.34.
UV_PLATFORMS = {"arm64": "aarch64-manylinux_2_28", "x86_64": "x86_64-manylinux_2_28"}


def uv_compile(arguments: list[str], output: Path, upgrade: bool, stdin: str | None = None) -> None:
    """`uv pip compile` into `output` with hashes; an existing `output` gives the versions to keep."""
    if importlib.util.find_spec("uv") is None:
        raise SystemExit(f"uv is not installed in {sys.prefix}: `make lock` installs it")
    command = [sys.executable, "-m", "uv", "pip", "compile", "--quiet", "--generate-hashes"]
    command += ["--custom-compile-command", "make lock", "--output-file", str(output), *arguments]
    command += ["--upgrade"] if upgrade else []
    subprocess.run(command, check=True, cwd=ROOT, input=stdin, text=True)


def lowest_python(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The oldest Python `requires-python` allows (">=3.11" -> "3.11")."""
    requires = tomllib.loads(pyproject.read_text())["project"]["requires-python"]
    found = re.search(r">=\s*(\d+\.\d+)", requires)
    if not found:
        raise SystemExit(f"requires-python {requires!r} names no lowest version (>=X.Y)")
    return found.group(1)


def pins(lock: Path) -> list[str]:
    """A lock's requirement lines, without its header and `# via` comments."""
    return [line for line in lock.read_text().splitlines() if line and not line.lstrip().startswith("#")]


def lock_lambda(tracing: bool, upgrade: bool) -> None:
    """One lock for both architectures: resolved for each, and refused if they differ."""
    lock = LOCKS[tracing]
    common = ["-", "--constraint", str(DEV_LOCK), "--only-binary", ":all:"]
    common += ["--python-version", DEFAULT_PYTHON_VERSION]
    stdin = "\n".join(runtime_requirements(tracing=tracing)) + "\n"
    first, *others = UV_PLATFORMS.items()
    uv_compile([*common, "--python-platform", first[1]], lock, upgrade, stdin)
    for architecture, platform in others:
        with tempfile.TemporaryDirectory(prefix="aurora-restore-lock-") as scratch:
            other = Path(scratch) / lock.name
            other.write_text(lock.read_text())
            uv_compile([*common, "--python-platform", platform], other, upgrade, stdin)
            if pins(other) != pins(lock):
                raise SystemExit(f"{lock.name}: {first[0]} and {architecture} resolve to different pins")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.lock", description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed release")
    args = parser.parse_args(argv)
    REQUIREMENTS.mkdir(exist_ok=True)
    universal = ["--universal", "--python-version", lowest_python()]
    uv_compile(["pyproject.toml", "--all-extras", *universal], DEV_LOCK, args.upgrade)
    uv_compile(
        ["pyproject.toml", "--extra", "local", "--constraint", str(DEV_LOCK), *universal], LOCAL_LOCK, False
    )
    for tracing in (False, True):
        lock_lambda(tracing, upgrade=False)
    for lock in (DEV_LOCK, LOCAL_LOCK, *LOCKS.values()):
        print(f"lock: {lock.relative_to(ROOT)}, {len([line for line in pins(lock) if '==' in line])} pins")


if __name__ == "__main__":
    main()
