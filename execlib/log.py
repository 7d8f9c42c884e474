"""Logging set-up for the command line: text or JSON lines, access log on stdout."""

from __future__ import annotations

import json
import logging
import sys

_ACCESS_FIELDS = ("method", "path", "status", "size", "ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access records carry their fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _ACCESS_FIELDS:
            if hasattr(record, field):
                data[field] = getattr(record, field)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class _Flushing(logging.StreamHandler):
    """Flush every record: a pipe reader must see lines as they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.flush()


def configure_logging(verbosity: int = 0, log_format: str = "text") -> None:
    """verbosity: -1 quiet (errors only, no access log), 0 normal, 1 verbose (debug)."""
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else logging.Formatter("%(message)s")
    root = logging.getLogger("execlib")
    root.handlers.clear()
    root.propagate = False
    errors = _Flushing(sys.stderr)
    errors.setFormatter(formatter if log_format == "json" else logging.Formatter("execlib: %(levelname)s: %(message)s"))
    root.addHandler(errors)
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO)

    access = logging.getLogger("execlib.access")
    access.handlers.clear()
    access.propagate = False
    out = _Flushing(sys.stdout)
    out.setFormatter(formatter)
    access.addHandler(out)
    access.setLevel(logging.WARNING if verbosity < 0 else logging.INFO)

    for name in ("uvicorn", "uvicorn.error"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.addHandler(errors)
        uv.propagate = False
        uv.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING)
