"""The run's clock and its JSON result: each section gets a share of the run's time, and the JSON is
rewritten after every section, so a run cut short keeps what it measured."""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any, Callable


class Deadline:
    """The end of the run or of one section: a section asks what is left rather than keeping time itself."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    @property
    def over(self) -> bool:
        return self.left() <= 0

    def part(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now, but never after this one."""
        return Deadline(min(seconds, self.left()))


class Report:
    """The JSON result, rewritten after every section."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.failed: list[str] = []

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")

    def section(self, name: str, run: Callable[[], dict[str, Any]], deadline: Deadline) -> dict[str, Any]:
        """Runs one section; a failure is recorded with its error and the run goes on. A section
        the run's time does not reach is recorded as skipped."""
        print(f"{name} ...", flush=True)
        t = time.perf_counter()
        result: dict[str, Any]
        try:
            result = run() if not deadline.over else {"skipped": "no time was left in the run's budget"}
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
            self.failed.append(name)
            print(f"{name} failed: {result['error']}", flush=True)
        result["section_seconds"] = round(time.perf_counter() - t, 1)
        self.data[name] = result
        self.save()
        return result
