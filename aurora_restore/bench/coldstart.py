"""Cold start: each handler module imported in a fresh interpreter, and the deployment artifact's size.

Two probes:
- `import_ms`: each handler module imported from the project, with its bytecode compiled first, as the
  artifact ships it (infra.package compiles the artifact's bytecode with the runtime's Python). For the
  slowest, `libraries`: the same fresh import of only the third-party modules it loads (botocore,
  Powertools, pydantic, psycopg2...), so that the figure can be read on any machine: what is left is ours.
- `artifact_probe`: the artifact itself, built for this machine's platform and Python, unpacked as Lambda
  unpacks it (read-only: nothing compiled is kept), its handlers imported with the bytecode it ships and
  from its sources only; botocore comes from it too, as the artifact ships it (infra/package.py).
"""

from __future__ import annotations

import compileall
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from functions.routes import FUNCTIONS
from infra import package

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "build" / "lambda" / "aurora-restore-lambda.zip"
PROBE_BUILD = ROOT / "build" / "bench-lambda"
_PROBE = (
    "import time; began = time.perf_counter(); import functions.{module}; "
    "print((time.perf_counter() - began) * 1000)"
)


# What the deployed functions have in their environment that changes import work (infra/function.py):
# pydantic skips its plugin discovery, an entry-point scan of every installed distribution.
DEPLOYED_ENVIRONMENT = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
HOST_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def import_ms(module: str, path: Path | None = None) -> float:
    """Milliseconds to import functions.<module> in a fresh interpreter, in the deployed functions'
    environment (DEPLOYED_ENVIRONMENT), since that is the cold start the probe stands for. With `path`,
    from that unpacked artifact, writing no bytecode (Lambda's /var/task is read-only)."""
    return float(_fresh(_PROBE.format(module=module), path=path))


def _fresh(code: str, stdin: str | None = None, path: Path | None = None) -> str:
    """The last line `code` prints in a fresh interpreter with the deployed functions' environment."""
    env = {**os.environ, **DEPLOYED_ENVIRONMENT}
    if path is not None:
        env.update(PYTHONPATH=str(path), PYTHONDONTWRITEBYTECODE="1")
    answer = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        cwd=path or ROOT,
        timeout=60,
        env=env,
    )
    return answer.stdout.strip().splitlines()[-1]


# Which modules a handler loads that are not ours, in the order it loads them.
_LOADED_PROBE = (
    "import json, sys; before = set(sys.modules); import functions.{module}; "
    "print(json.dumps([name for name in sys.modules if name not in before "
    "and name.partition('.')[0] not in {own!r}]))"
)
# Imports those modules by name, in that order, and times it; a name that cannot be imported on its own
# (an alias a package puts in sys.modules) was loaded by its package anyway.
_LIBRARIES_PROBE = """
import importlib, json, sys, time
names = json.loads(sys.stdin.read())
began = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
print((time.perf_counter() - began) * 1000)
"""
OWN_PACKAGES = ("functions", "schemas")


def libraries_ms(module: str, repeats: int) -> dict[str, Any]:
    """The best of `repeats` fresh imports of only the third-party modules functions.<module> loads: the
    part of its cold start that is not our code. Timed in alternation with the handler's own import
    (`handler_ms`, best of as many), so that both bests come from the same spells of a shared machine: timed
    apart, a slow spell during one of them moved tens of milliseconds between "ours" and "theirs"."""
    names = json.loads(_fresh(_LOADED_PROBE.format(module=module, own=OWN_PACKAGES)))
    handler = alone = math.inf
    for _ in range(repeats):
        handler = min(handler, import_ms(module))
        alone = min(alone, float(_fresh(_LIBRARIES_PROBE, json.dumps(names))))
    top = {name.partition(".")[0] for name in names}
    third_party = sorted(name for name in top if name not in sys.stdlib_module_names and name[0] != "_")
    return {
        "ms": round(alone, 1),
        "handler_ms": round(handler, 1),
        "modules": len(names),
        "third_party": third_party,
    }


def _best(repeats: int, path: Path | None = None) -> dict[str, float]:
    """Each module's best of `repeats` imports, taken in rounds over all the modules: a slow spell of the
    shared machine then costs one round of each module, not every try of one (the modules are alike, and a
    handler timed five times in a row during a spell came out 150 ms above the others)."""
    best = dict.fromkeys(FUNCTIONS, math.inf)
    for _ in range(repeats):
        for name in FUNCTIONS:
            best[name] = min(best[name], import_ms(name, path))
    return {name: round(ms, 1) for name, ms in best.items()}


def compile_project() -> None:
    """Our modules' bytecode, as the artifact ships it (a machine with PYTHONDONTWRITEBYTECODE=1 would
    otherwise compile them at every probe)."""
    for name in package.CODE_PACKAGES:
        compileall.compile_dir(ROOT / name, quiet=1)


def measure_artifact(repeats: int) -> dict[str, Any]:
    """The artifact built for this machine, unpacked, its handlers imported with and without bytecode."""

    architecture = HOST_ARCHITECTURES.get(platform.machine().lower())
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if architecture is None:
        return {"note": f"no Lambda platform for this machine ({platform.machine()})"}
    figures: dict[str, Any] = {"platform": f"{architecture} / Python {version}", "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="aurora-restore-probe-") as scratch:
        for label, bytecode in (("bytecode", True), ("sources_only", False)):
            zipped = PROBE_BUILD / f"{label}.zip"
            try:
                with contextlib.redirect_stdout(sys.stderr):  # its progress, not the bench's table
                    package.build(architecture, version, zipped, bytecode=bytecode)
            except (subprocess.CalledProcessError, OSError) as exc:
                return {"note": f"could not build the artifact for this machine (pip needs PyPI): {exc}"}
            unpacked = Path(scratch) / label
            with zipfile.ZipFile(zipped) as archive:
                archive.extractall(unpacked)
            modules = _best(repeats, unpacked)
            slowest = max(modules, key=modules.__getitem__)
            figures[label] = {
                "import_ms": modules,
                "max_import_ms": modules[slowest],
                "slowest": slowest,
                **_size(zipped),
            }
    figures["bytecode_saves_ms"] = round(
        figures["sources_only"]["max_import_ms"] - figures["bytecode"]["max_import_ms"], 1
    )
    return figures


def _size(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    return {"path": str(path.relative_to(ROOT)), "bytes": size, "mb": round(size / 1_000_000, 2)}


def _artifact(probe: dict[str, Any]) -> dict[str, Any]:
    """The deployment artifact's size: `make package`'s, or else the one the probe built for this machine."""
    if ARTIFACT.exists():
        artifact = _size(ARTIFACT)
        manifest = ARTIFACT.with_suffix(".json")
        if manifest.exists():
            artifact["bytecode"] = json.loads(manifest.read_text()).get("bytecode")
        return artifact
    if "bytecode" in probe:
        shipped = probe["bytecode"]
        return {key: shipped[key] for key in ("path", "bytes", "mb")} | {
            "note": f"built for {probe['platform']} by the probe; `make package` builds the arm64 one"
        }
    return {
        "path": str(ARTIFACT.relative_to(ROOT)),
        "bytes": None,
        "mb": None,
        "note": "not built: run `make package` (python -m infra.package) first",
    }


def measure_cold_start(repeats: int, artifact_probe: bool = True) -> dict[str, Any]:
    """The best of `repeats` fresh imports per module (the machine is shared, so the best is the signal)."""
    compile_project()
    modules = _best(repeats)
    slowest = max(modules, key=modules.__getitem__)
    libraries = libraries_ms(slowest, repeats)
    probe = measure_artifact(repeats) if artifact_probe else {"note": "skipped"}
    return {
        "import_ms": modules,
        "max_import_ms": modules[slowest],
        "slowest_module": f"functions.{slowest}",
        # the slowest handler's import, split: the libraries it loads, and what is left, our own modules
        "slowest_libraries_ms": libraries["ms"],
        "slowest_own_ms": round(max(0.0, libraries["handler_ms"] - libraries["ms"]), 1),
        "slowest_libraries": libraries,
        "repeats": repeats,
        "artifact": _artifact(probe),
        "artifact_probe": probe,
    }
