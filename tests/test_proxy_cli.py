"""``execlib serve --proxy``: bad URLs are one-line errors (exit 2); an absent backend is a warning."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from execlib.config import ServerConfig
from execlib.errors import ConfigError

from .helpers import execlib_cmd, start_cli
from .proxy_support import HOST, free_port


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1:3000", "must be an http:// or https:// URL"),
        ("http://127.0.0.1:99999", "has a bad port: use 1-65535"),
        ("http://127.0.0.1:0", "has a bad port: use 1-65535"),
        ("http://:3000", "has no host"),
        ("http://127.0.0.1:3000/app", "with no path"),
    ],
)
def test_invalid_proxy_url_is_one_line_and_exit_2(tmp_path: Path, url: str, problem: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    result = subprocess.run(
        execlib_cmd("serve", "--proxy", url, "--port", "0"),
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"--proxy {url}" in lines[0] and problem in lines[0]


def test_invalid_proxy_options_in_python() -> None:
    with pytest.raises(ConfigError, match="proxy_host_header='keep' must be 'preserve' or 'rewrite'"):
        ServerConfig(proxy="http://127.0.0.1:3000", proxy_host_header="keep")
    with pytest.raises(ConfigError, match="proxy_timeout=-1 must be a number of seconds"):
        ServerConfig(proxy="http://127.0.0.1:3000", proxy_timeout=-1)
    assert ServerConfig(proxy="LOCALHOST:3000").proxy == "http://localhost:3000"
    assert ServerConfig(proxy="https://example.test").proxy == "https://example.test:443"


def test_env_proxy_with_a_bad_url_names_the_variable(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    result = subprocess.run(
        execlib_cmd("serve", "--port", "0"),
        cwd=tmp_path,
        env={**clean, "EXECLIB_PROXY": "gopher://x"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "execlib: error: EXECLIB_PROXY='gopher://x' must be an http:// or https:// URL"


def test_unreachable_backend_at_start_is_a_warning(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "index.html").write_text("not served: no ROOT was given")
    proc, url = start_cli(
        "serve", "--proxy", f"http://{HOST}:{port}", "--port", "0", "--proxy-timeout", "0", cwd=tmp_path
    )
    try:
        with httpx.Client(timeout=10) as client:
            page = client.get(url, headers={"accept": "text/html"})
        assert page.status_code == 502  # the backend answers "/", not ROOT's index.html
        assert f"waiting for <code>http://{HOST}:{port}</code>" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    warnings = [line for line in err.splitlines() if "not answering" in line]
    assert len(warnings) == 1, err
    assert f"backend http://{HOST}:{port} is not answering (connection refused)" in warnings[0]
