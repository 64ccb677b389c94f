"""The artifact's bytecode (infra.package.compile_bytecode): what Lambda's read-only /var/task can use
without compiling anything at cold start. Compiled here with this interpreter, so no PyPI is needed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.package import bytecode_files, compile_bytecode, find_interpreter

pytestmark = pytest.mark.infra


def tree(root: Path) -> list[tuple[Path, str]]:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("ANSWER = 'compiled'\nKINDS = {'a', 'b', 'c', 'd'}\n")
    (root / "pkg" / "broken.py").write_text("def oops(:\n")
    return [(root / "pkg" / name, f"pkg/{name}") for name in ("__init__.py", "mod.py", "broken.py")]


def test_modules_load_from_the_bytecode_without_reading_their_source(tmp_path: Path) -> None:
    # Given a package compiled with this interpreter into the layout the zip gets
    sources = tree(tmp_path / "src")
    out = tmp_path / "task"
    tag, failed = compile_bytecode(sys.executable, sources, out)
    assert tag == sys.implementation.cache_tag
    assert failed == ["pkg/broken.py"]  # ships as source only, and the build goes on
    assert [name for _, name in bytecode_files(out)] == [
        f"pkg/__pycache__/__init__.{tag}.pyc",
        f"pkg/__pycache__/mod.{tag}.pyc",
    ]
    # laid out as the artifact is: sources and bytecode side by side
    for path, name in [*sources, *bytecode_files(out)]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        if path != out / name:
            (out / name).write_bytes(path.read_bytes())

    # When the source changes after packaging and a read-only interpreter imports the module
    (out / "pkg" / "mod.py").write_text("ANSWER = 'source'\n")
    answer = subprocess.run(
        [sys.executable, "-c", "import pkg.mod; print(pkg.mod.ANSWER)"],
        capture_output=True,
        text=True,
        cwd=out,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )

    # Then the shipped bytecode was used as it is (unchecked hash: no source read, no timestamp trusted)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "compiled"


def test_the_same_sources_give_the_same_bytecode(tmp_path: Path) -> None:
    sources = tree(tmp_path / "src")

    def digest(out: Path) -> str:
        compile_bytecode(sys.executable, sources, out)
        return hashlib.sha256(b"".join(path.read_bytes() for path, _ in bytecode_files(out))).hexdigest()

    # set constants are marshalled in hash order: the build pins the hash seed, so the zip is stable
    assert digest(tmp_path / "one") == digest(tmp_path / "two")


def test_this_interpreter_is_found_for_its_own_version() -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert find_interpreter(version) == sys.executable
    assert find_interpreter("2.1") is None
