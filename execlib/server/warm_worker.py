"""The warm build process: imports a build tool once, then runs each build in a fresh fork of itself.

Never imported by execlib: ``execlib.server.warm`` passes this file's text to a Python
interpreter with ``-c``, so it runs in whatever environment has the tool (the one execlib runs in,
or the interpreter of a ``sphinx-build`` found on PATH) and needs nothing but the standard library.
``sys.path[0]`` is then the current folder, as for ``python -m sphinx``.

Arguments: SENTINEL ENTRY [PRELOAD ...]. ``ENTRY`` is ``module:function``, called with a build's
arguments like the tool's own command; ``PRELOAD`` modules are imported once, up front (a failure
is ignored: the build itself will report it); ``module:attribute`` imports each module named in
that list attribute (``sphinx.application:builtin_extensions``). Once ready the process writes
``SENTINEL ready``, or ``SENTINEL cold REASON`` and exits when ENTRY's module cannot be imported.

Protocol: one JSON request a line on stdin, ``{"argv0": ..., "args": [...], "cwd": "..."}``. For each, the
process forks; the child starts a session of its own, sends stderr to stdout and runs the build,
while this process writes ``SENTINEL pid N`` on stdout (before the child writes anything: the
child waits for a byte on a pipe), waits for it, and writes ``SENTINEL exit CODE``. A line from the
child that lacks its newline gets the sentinel glued to its end; the reader splits it off.
Every build starts from the same freshly imported state: nothing a build does (a conf.py, an
extension's globals, a leak) reaches the next one.
"""

import importlib
import io
import json
import os
import signal
import sys
import traceback
from typing import Any


def _run_child(request: dict[str, Any], entry: str, go: int) -> None:
    code = 1
    try:
        os.read(go, 1)  # the parent has announced our pid: output may start
        os.close(go)
        os.setsid()  # its own process group: a timeout kills the whole build
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.dup2(1, 2)  # one stream, in the order it was written
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # stdin carries our requests: a build must not read them
        os.close(devnull)
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(line_buffering=True)  # streamed as it runs, not at exit
        os.chdir(request["cwd"])
        sys.argv = [request["argv0"], *request["args"]]
        module, _, name = entry.partition(":")
        function = getattr(importlib.import_module(module), name)
        outcome = function(list(request["args"]))
        code = outcome if isinstance(outcome, int) else 0
    except SystemExit as stop:  # click (mkdocs) ends with sys.exit
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF if code >= 0 else 1)


def _preload(name: str) -> None:
    module, _, attribute = name.partition(":")
    try:
        loaded = importlib.import_module(module)
        for each in getattr(loaded, attribute, ()) if attribute else ():
            _preload(each)
    except Exception:
        pass


def main() -> None:
    sentinel, entry, preload = sys.argv[1], sys.argv[2], sys.argv[3:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # execlib ends this process itself
    out = sys.stdout.buffer
    try:
        importlib.import_module(entry.partition(":")[0])
    except Exception as error:
        out.write(f"{sentinel} cold cannot import {entry}: {type(error).__name__}: {error}\n".encode())
        out.flush()
        return
    for name in preload:
        _preload(name)
    out.write(f"{sentinel} ready\n".encode())
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_write)
            _run_child(request, entry, go_read)
        os.close(go_read)
        out.write(f"{sentinel} pid {pid}\n".encode())
        out.flush()
        os.write(go_write, b"g")
        os.close(go_write)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.write(f"{sentinel} exit {code}\n".encode())
        out.flush()


main()
