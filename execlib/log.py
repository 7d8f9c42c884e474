"""Logging set-up for the command line: text or JSON lines, access log on stdout.

What a client sends (a request path, a header, a page URL) must not reach the developer's
terminal raw: ``%0a`` in a path would forge a second log line, ``%1b`` would send escape codes to
the terminal. So the text format escapes control characters in what the loggers that handle
requests write, and the JSON format escapes them as JSON does (the values stay exact).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

_ACCESS_FIELDS = ("method", "path", "status", "size", "ms")

#: the logger a running build's own output lines go to, one record per line (execlib.server.build)
BUILD_OUTPUT_LOGGER = "execlib.build.output"
#: how the text format sets a build's output apart from execlib's own lines
BUILD_OUTPUT_INDENT = "  | "

# Loggers whose messages carry what clients send. Others keep their text as it is: build output,
# for one, is meant to be shown as the tool printed it, line breaks and colours included.
REQUEST_LOGGERS = ("execlib.access", "execlib.livereload", "execlib.static", "execlib.server", "uvicorn")

# C0 and C1 controls and DEL (line breaks, escape sequences; a terminal takes 0x9b as ESC [),
# the Unicode line and paragraph separators, and the bidirectional overrides and isolates, which
# make a line read differently from what it holds.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The ones json.dumps leaves as they are (it escapes C0 itself).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with control characters written as ``\\xNN`` / ``\\uNNNN``: one line, no escapes."""
    return _UNSAFE.sub(_escape_char, text) if _UNSAFE.search(text) else text


class SafeTextFormatter(logging.Formatter):
    """A text formatter that escapes control characters in the messages of request loggers.

    The whole message is escaped, not only the values put into it: a request logger's own text
    has no control characters to keep, and this costs one regex search per line, where access
    lines are written on every request. A traceback, formatted apart, keeps its line breaks.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        if record.name.startswith(REQUEST_LOGGERS) and _UNSAFE.search(record.message):
            # record.message is this formatting's own copy: every Formatter.format() sets it anew
            record.message = escape_controls(record.message.rstrip("\n"))
        return super().formatMessage(record)


class CommandLineFormatter(SafeTextFormatter):
    """The text format of stderr: ``execlib: message`` for execlib's own INFO lines (what changed, what
    a build did), ``execlib: LEVEL: message`` for the rest, and a build's output indented under them.

    The level is left out of INFO lines because they are the running commentary a user reads all
    day; a warning or an error keeps its level so it stands out. uvicorn's lines keep theirs.
    """

    def __init__(self) -> None:
        super().__init__("execlib: %(levelname)s: %(message)s")
        self._info = SafeTextFormatter("execlib: %(message)s")
        self._output = SafeTextFormatter(BUILD_OUTPUT_INDENT + "%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == BUILD_OUTPUT_LOGGER:
            return self._output.format(record)
        if record.levelno == logging.INFO and record.name.startswith("execlib"):
            return self._info.format(record)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access records carry their fields at the top level.

    json.dumps escapes C0 controls; the other characters of ``_UNSAFE`` are written as ``\\uNNNN``
    too, which keeps every value exact for a JSON reader and the line safe for a terminal.
    """

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
        line = json.dumps(data, ensure_ascii=False)
        # these characters can only stand inside JSON strings, where \\uNNNN means the same
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


if TYPE_CHECKING:
    _TextStreamHandler = logging.StreamHandler[TextIO]
else:  # StreamHandler takes a type argument at run time only from Python 3.11
    _TextStreamHandler = logging.StreamHandler


class _Flushing(_TextStreamHandler):
    """Flush every record: a pipe reader must see lines as they happen.

    Once the reader has gone away (``execlib serve | head -1``, a closed terminal) lines are
    dropped, quietly: the server keeps serving, and neither raises into the thread that logged
    (a request, the watcher) nor writes a "Logging error" traceback to stderr per line.
    """

    gone = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.gone:
            return
        try:
            text = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe, or a closed file object
            self.gone = True
        except OSError:  # a full disk under the log file: say so, and try the next line again
            self.handleError(record)


def configure_logging(verbosity: int = 0, log_format: str = "text") -> None:
    """verbosity: -1 quiet (warnings and errors, no access log), 0 normal, 1 verbose (debug)."""
    json_lines = log_format == "json"
    formatter: logging.Formatter = JsonFormatter() if json_lines else SafeTextFormatter("%(message)s")
    root = logging.getLogger("execlib")
    root.handlers.clear()
    root.propagate = False
    errors = _Flushing(sys.stderr)
    errors.setFormatter(formatter if json_lines else CommandLineFormatter())
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


def hold_access_log() -> Callable[[], None]:
    """Keep access-log lines back, in memory, until the returned function is called; it writes
    them out and lets later ones straight through.

    ``execlib serve`` answers requests while it sets up its watching, and prints its start line
    only once that is done; a request in between (a health check, a quick browser) must not put
    its line on stdout ahead of the start line, which tools read as the first line.
    """
    import logging.handlers

    access = logging.getLogger("execlib.access")
    targets = list(access.handlers)
    if len(targets) != 1:
        return lambda: None
    held = logging.handlers.MemoryHandler(1_000_000, flushLevel=logging.CRITICAL + 1, target=targets[0])
    access.handlers = [held]

    def release() -> None:
        if access.handlers == [held]:
            access.handlers = targets
        held.flush()  # after the swap: a line that came in during it is written too
        held.close()

    return release
