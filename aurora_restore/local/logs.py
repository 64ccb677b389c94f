"""Where the functions' JSON logs go while the local runtime runs: a file, or memory, not the terminal."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


class MemoryStream:
    """A write-only text stream that keeps each line (for scans of what the functions logged)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            *complete, self._partial = self._partial.split("\n")
            self.lines.extend(line for line in complete if line)
        return len(text)

    def flush(self) -> None:
        return None


class LogRedirect:
    """Points the functions' log handler at `path` (appended to) or, without one, at `lines`; `restore`
    points it back."""

    def __init__(self, path: Path | None, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self._stream: Any = None
        self._original: Any = None

    def start(self) -> None:
        from functions.observability import logger

        handler = logger.registered_handler
        self._original = getattr(handler, "stream", None)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("a", encoding="utf-8")
        else:
            self._stream = MemoryStream(self.lines)
        handler.setStream(self._stream)  # type: ignore[attr-defined]

    def restore(self) -> None:
        from functions.observability import logger

        if self._original is not None:
            logger.registered_handler.setStream(self._original)  # type: ignore[attr-defined]
        if self._stream is not None and not isinstance(self._stream, MemoryStream):
            self._stream.close()
