"""Log lines whose reader went away are dropped quietly: the server keeps serving, with no traceback."""

from __future__ import annotations

import io
import logging
import select
import subprocess
from pathlib import Path

import httpx

from execlib.log import _Flushing

from .helpers import execlib_cmd


def test_serving_goes_on_when_the_access_logs_reader_has_gone(site: Path) -> None:
    # what `execlib serve site | head -1` does: the start line is read, then stdout's pipe closes
    proc = subprocess.Popen(
        execlib_cmd("serve", str(site), "--port", "0", "--no-config"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # read here, not with a reader thread: closing a pipe another thread is reading blocks
        assert select.select([proc.stdout], [], [], 15)[0], "no start line"
        url = proc.stdout.readline().split(" at ")[1].split()[0]
        proc.stdout.close()
        assert [httpx.get(url, timeout=10).status_code for _ in range(3)] == [200, 200, 200]
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert "Traceback" not in err and "Logging error" not in err, err


def test_a_closed_stream_never_raises_into_the_caller() -> None:
    stream = io.StringIO()
    handler = _Flushing(stream)
    logger = logging.getLogger("execlib.tests.closed-stream")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("written")
        assert stream.getvalue() == "written\n"
        stream.close()
        logger.warning("dropped")  # raised ValueError from flush() before
        assert handler.gone
    finally:
        logger.removeHandler(handler)
