"""Build the one Lambda artifact (`make package`): functions/ and schemas/ plus their runtime dependencies,
installed for the Lambda platform (arm64 by default), without boto3/botocore, tests or operator tooling.

    python -m infra.package [--architecture arm64|x86_64] [--python-version 3.12] [--output PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "lambda"
ARTIFACT = BUILD / "aurora-restore-lambda.zip"
MANIFEST = BUILD / "aurora-restore-lambda.json"
# Our code: the step functions and the models they share. Never aurora_restore/ (operator tooling),
# tests/ or infra/.
CODE_PACKAGES = ("functions", "schemas")
# Already in every Lambda Python runtime; packaging them would only add 20 MB and pin an old copy.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore"})
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
# Tracing (aurora-restore:tracing) needs the X-Ray SDK, which is otherwise left out.
TRACING_DEPENDENCIES = ("aws-xray-sdk>=2.12",)
SKIPPED_PARTS = frozenset({"__pycache__", "tests", "test"})
SKIPPED_TOP_LEVEL = frozenset({"bin"})  # console scripts pip installs for the dependencies
FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # the same inputs give the same zip, so Pulumi sees no change


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml", tracing: bool = False) -> list[str]:
    """[project].dependencies minus what the Lambda runtime provides."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    wanted = [item for item in dependencies if _name(item) not in PROVIDED_BY_RUNTIME]
    return wanted + (list(TRACING_DEPENDENCIES) if tracing else [])


def install_dependencies(
    requirements: list[str], architecture: str, python_version: str, cache: Path = BUILD
) -> Path:
    """pip install for the Lambda platform into a cached directory (keyed by what is installed)."""
    key = hashlib.sha256(json.dumps([requirements, architecture, python_version]).encode()).hexdigest()[:12]
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
        "--target",
        str(target),
        *requirements,
    ]
    print(f"dependencies: pip install {' '.join(requirements)} for {architecture} / Python {python_version}")
    subprocess.run(command, check=True)
    (target / ".complete").write_text("\n".join(requirements) + "\n")
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


def write_zip(output: Path, dependencies: Path, root: Path = ROOT) -> int:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    entries = [*_files(dependencies, dependencies), *code_files(root)]
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
    architecture: str = "arm64",
    python_version: str = "3.12",
    output: Path = ARTIFACT,
    tracing: bool = False,
) -> Path:
    if architecture not in PLATFORMS:
        raise SystemExit(f"architecture must be one of {', '.join(PLATFORMS)}")
    requirements = runtime_requirements(tracing=tracing)
    dependencies = install_dependencies(requirements, architecture, python_version)
    print(f"artifact: writing {output}")
    count = write_zip(output, dependencies)
    manifest = output.with_suffix(".json")
    manifest.write_text(
        json.dumps(
            {
                "architecture": architecture,
                "python_version": python_version,
                "requirements": requirements,
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
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--python-version", default="3.12", help="the Lambda runtime's Python (3.12, 3.13)")
    parser.add_argument("--output", type=Path, default=ARTIFACT)
    parser.add_argument("--tracing", action="store_true", help="add the X-Ray SDK (aurora-restore:tracing)")
    args = parser.parse_args(argv)
    build(args.architecture, args.python_version, args.output, args.tracing)


if __name__ == "__main__":
    main()
