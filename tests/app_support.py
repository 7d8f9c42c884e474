"""App mode test support: real apps written into temporary folders, and servers that run them.

``write_fastapi_app`` writes a FastAPI app (``main.py``) whose page says ``version N``, whose
lifespan logs each startup and shutdown with the worker's pid (``lifespan.log``, not Python,
so writing it restarts nothing), and whose routes let a test see the pid, hold a request, read
a template at request time, and kill its own worker. ``write_wsgi_app`` writes a plain WSGI
callable. ``app_server`` runs one with a real Server (uvicorn on port 0, real workers) and,
when it is done, checks that no worker process is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from execlib.server import Server

from .helpers import wait_until

FASTAPI_APP = """\
import asyncio
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse

HERE = Path(__file__).parent
VERSION = {version!r}


def log(event):
    with open(HERE / "lifespan.log", "a") as file:
        file.write(f"{{event}} {{os.getpid()}}\\n")


@asynccontextmanager
async def lifespan(app):
    {startup}
    log("startup")
    yield
    log("shutdown")


app = FastAPI(lifespan=lifespan)


@app.get("/", response_class=HTMLResponse)
def index():
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>app</title>"
        "<link rel='stylesheet' href='/static/style.css'></head>"
        f"<body><p id='msg'>{{VERSION}}</p><p id='pid'>{{os.getpid()}}</p></body></html>"
    )


@app.get("/pid")
def pid():
    return {{"pid": os.getpid(), "version": VERSION}}


@app.get("/slow", response_class=PlainTextResponse)
async def slow(seconds: float = 1.0):
    (HERE / "slow.started").write_text(str(os.getpid()))
    await asyncio.sleep(seconds)
    return f"slow done by {{os.getpid()}} ({{VERSION}})"


@app.get("/page", response_class=HTMLResponse)
def page():
    body = (HERE / "templates" / "page.html").read_text()
    head = "<!DOCTYPE html><html><head><title>page</title></head>"
    return f"{{head}}<body>{{body}}<p id='pid'>{{os.getpid()}}</p></body></html>"


@app.get("/boom")
def boom():
    raise RuntimeError("the app's own error")


@app.get("/die")
def die():
    os._exit(7)
"""

WSGI_APP = """\
import os


def app(environ, start_response):
    body = f"wsgi says hello from {{os.getpid()}} at {{environ['PATH_INFO']}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def write_fastapi_app(folder: Path, version: str = "version 1", startup: str = "pass") -> Path:
    """Write (or rewrite, as an editor saves: a temp file renamed over it) the FastAPI app."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "templates").mkdir(exist_ok=True)
    if not (folder / "templates" / "page.html").exists():
        (folder / "templates" / "page.html").write_text("<p id='msg'>template one</p>")
    return save(folder / "main.py", FASTAPI_APP.format(version=version, startup=startup))


def write_wsgi_app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return save(folder / "wsgi_app.py", WSGI_APP.format())


def save(path: Path, text: str) -> Path:
    temp = path.with_name(f".{path.name}.part")
    temp.write_text(text)
    os.replace(temp, path)
    return path


def lifespan_events(folder: Path) -> list[tuple[str, int]]:
    path = folder / "lifespan.log"
    if not path.exists():
        return []
    return [(event, int(pid)) for event, pid in (line.split() for line in path.read_text().splitlines())]


def worker_pids(server: Server) -> list[int]:
    assert server.app_mode is not None
    live = server.app_mode.supervisor.live
    return list(live.pids) if live is not None else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as file:  # a zombie is not alive
        if file.read().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def children_running_workers() -> list[int]:
    """Processes of this test run that are app workers (children of this process)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                command = file.read()
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"execlib.app.worker" in command and int(stat[1]) == os.getpid() and stat[0] != "Z":
            found.append(int(entry))
    return found


@contextlib.contextmanager
def app_server(folder: Path, app: Any = "main:app", **options: Any) -> Iterator[Server]:
    """A Server in app mode on port 0 (in a thread), shut down on the way out with no worker left."""
    options.setdefault("port", 0)
    options.setdefault("app_dir", folder)
    options.setdefault("static", False)
    options.setdefault("root", folder)
    server = Server(app=app, **options)
    server.start_in_thread(timeout=60)
    pids: set[int] = set()
    try:
        yield server
        pids = set(worker_pids(server))
    finally:
        server.shutdown()
        assert server.wait(30), "server did not stop"
        for pid in pids:
            wait_until(lambda pid=pid: not alive(pid), 10, message=f"worker {pid} to exit")
    wait_until(lambda: not children_running_workers(), 10, message="no worker process left")


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
