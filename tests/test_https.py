"""TLS: the local CA of ``--https`` and its leaves, the user's own certificates, serving https, the
``execlib https`` command, and start/status/stop of an https server."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import re
import shlex
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from execlib import Server
from execlib.cli.banner import start_line
from execlib.config import CommandOptions, ServerConfig, load_config
from execlib.errors import ConfigError
from execlib.tls import ca_folder, leaf_folder, resolve_tls
from execlib.tls.ca import ensure_ca
from execlib.tls.leaf import ensure_leaf, issue_leaf, leaf_pem
from execlib.tls.trust import TrustTarget, can_install, system_steps

from .helpers import execlib_cmd, read_line, wait_until
from .lifecycle_support import CLEAN_ENV, gone, kill_tree, pid_file_data

pytestmark = pytest.mark.timeout(60)

LAN = ["127.0.0.1", "::1", "192.168.1.20", "10.0.0.5", "fe80::1%eth0", "2001:db8::5", "0.0.0.0"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("EXECLIB_DATA_DIR", str(folder))
    return folder


def trusting(ca_file: str | Path) -> ssl.SSLContext:
    """A client context that trusts only ``ca_file``."""
    return ssl.create_default_context(cafile=str(ca_file))


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName), [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]


def leaf_cert(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


# -- the local CA ---------------------------------------------------------------------------------


def test_ca_is_created_once_and_reused(data_dir: Path) -> None:
    first = ensure_ca(ca_folder())
    assert Path(first.cert_path) == data_dir / "ca" / "ca.pem"
    assert first.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    second = ensure_ca(ca_folder())
    assert second.cert == first.cert
    assert Path(first.cert_path).read_bytes() == Path(second.cert_path).read_bytes()


def test_ca_key_is_readable_by_the_user_only(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    assert stat.S_IMODE(os.stat(ca.key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ca.folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(ca.cert_path).st_mode) == 0o644


def _make_ca(folder: str, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    ca = ensure_ca(folder)
    results.put(ca.cert.fingerprint(ca.cert.signature_hash_algorithm))  # type: ignore[attr-defined,arg-type]


def test_concurrent_processes_create_one_ca(tmp_path: Path) -> None:
    folder = str(tmp_path / "data" / "ca")
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(6), context.Queue()
    workers = [context.Process(target=_make_ca, args=(folder, barrier, results)) for _ in range(6)]
    for worker in workers:
        worker.start()
    prints = {results.get(timeout=30) for _ in workers}
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert len(prints) == 1
    assert sorted(os.listdir(tmp_path / "data")) == ["ca"]  # no attempt left behind
    assert sorted(os.listdir(folder)) == ["ca-key.pem", "ca.pem"]


def test_concurrent_threads_create_one_ca(tmp_path: Path) -> None:
    folder = str(tmp_path / "data" / "ca")
    barrier = threading.Barrier(8)
    found: list[bytes] = []

    def make() -> None:
        barrier.wait()
        found.append(ensure_ca(folder).cert.public_bytes(serialization.Encoding.DER))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(found) == 8 and len(set(found)) == 1
    assert sorted(os.listdir(tmp_path / "data")) == ["ca"]


def test_a_damaged_ca_is_a_one_line_error(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    Path(ca.key_path).write_text("not a key")
    with pytest.raises(ConfigError, match="cannot be read.*remove that folder"):
        ensure_ca(ca_folder())


# -- the leaf -------------------------------------------------------------------------------------


def test_leaf_names_this_machine(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    path = ensure_leaf(ca, leaf_folder(), addresses=lambda: LAN, hostname="devbox")
    cert = leaf_cert(path)
    dns, ips = sans(cert)
    assert dns == ["localhost", "devbox"]
    assert ips == ["127.0.0.1", "::1", "192.168.1.20", "10.0.0.5", "2001:db8::5"]  # no link-local, no wildcard
    cert.verify_directly_issued_by(ca.cert)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds the leaf's key


def test_leaf_names_the_listening_host_too(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    named = ensure_leaf(ca, leaf_folder(), addresses=lambda: [], hostname="devbox", listen_host="dev.example.test")
    assert sans(leaf_cert(named)) == (["localhost", "devbox", "dev.example.test"], ["127.0.0.1", "::1"])
    address = ensure_leaf(ca, leaf_folder(), addresses=lambda: [], hostname="devbox", listen_host="172.16.0.4")
    assert sans(leaf_cert(address)) == (["localhost", "devbox"], ["127.0.0.1", "::1", "172.16.0.4"])
    wildcard = ensure_leaf(ca, leaf_folder(), addresses=lambda: [], hostname="devbox", listen_host="0.0.0.0")
    assert sans(leaf_cert(wildcard)) == (["localhost", "devbox"], ["127.0.0.1", "::1"])


def test_leaf_is_reused_then_reissued_when_the_names_change(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    first = ensure_leaf(ca, leaf_folder(), addresses=lambda: LAN, hostname="devbox")
    content = Path(first).read_bytes()
    assert ensure_leaf(ca, leaf_folder(), addresses=lambda: LAN, hostname="devbox") == first
    assert Path(first).read_bytes() == content  # not issued again
    moved = ensure_leaf(ca, leaf_folder(), addresses=lambda: ["192.168.7.9"], hostname="devbox")
    assert moved != first
    assert "192.168.7.9" in sans(leaf_cert(moved))[1]
    renamed = ensure_leaf(ca, leaf_folder(), addresses=lambda: ["192.168.7.9"], hostname="laptop")
    assert "laptop" in sans(leaf_cert(renamed))[0]
    assert os.path.exists(first)  # still valid: kept for when that network comes back


def test_expired_leaves_of_other_names_are_removed(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    old_network = ensure_leaf(ca, leaf_folder(), addresses=lambda: ["192.168.7.9"], hostname="devbox")
    dns, ips = sans(leaf_cert(old_network))
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400)
    Path(old_network).write_bytes(leaf_pem(*issue_leaf(ca, dns, ips, now=long_ago)))  # expired 3 days ago
    current = ensure_leaf(ca, leaf_folder(), addresses=lambda: LAN, hostname="devbox")
    assert os.listdir(leaf_folder()) == [os.path.basename(current)]


def test_leaf_near_expiry_is_reissued(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    path = ensure_leaf(ca, leaf_folder(), addresses=lambda: LAN, hostname="devbox")
    dns, ips = sans(leaf_cert(path))
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=390)
    old_cert, old_key = issue_leaf(ca, dns, ips, now=long_ago)  # 397 days: 7 left
    Path(path).write_bytes(leaf_pem(old_cert, old_key))
    assert ensure_leaf(ca, leaf_folder(), addresses=lambda: LAN, hostname="devbox") == path
    renewed = leaf_cert(path)
    assert renewed.serial_number != old_cert.serial_number
    left = renewed.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    assert left > datetime.timedelta(days=300)


# -- serving https --------------------------------------------------------------------------------


def test_https_page_verifies_against_the_local_ca_only(data_dir: Path, site: Path, serve) -> None:
    server = serve(site, https=True)
    assert server.url.startswith("https://127.0.0.1:")
    ca_file = data_dir / "ca" / "ca.pem"
    response = httpx.get(server.url, verify=trusting(ca_file))
    assert response.status_code == 200 and "Home" in response.text
    port = server.bound_addr[1]
    assert httpx.get(f"https://localhost:{port}/about.html", verify=trusting(ca_file)).status_code == 200
    other = trustme.CA()
    with other.cert_pem.tempfile() as other_file, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.url, verify=trusting(other_file))
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url)  # the system store does not know the local CA


def test_second_server_reuses_the_ca_and_leaf(data_dir: Path, site: Path, serve) -> None:
    first = serve(site, https=True)
    second = serve(site, https=True)
    assert first.tls == second.tls
    assert sorted(os.listdir(data_dir)) == ["ca", "leaf"]


def test_health_answers_over_tls_and_says_https(data_dir: Path, site: Path, serve) -> None:
    from execlib.process import fetch_health

    server = serve(site, https=True)
    health = fetch_health(server.url)
    assert health is not None and health["scheme"] == "https" and health["pid"] == os.getpid()
    # a caller that knows only host and port asks http first; the TLS port's close sends it to https
    assert fetch_health(server.url.replace("https://", "http://")) == health


def test_network_banner_shows_https_urls(data_dir: Path, site: Path) -> None:
    server = Server(site, host="0.0.0.0", port=0, https=True)
    server.bind()
    try:
        line = start_line(server, str(site), CommandOptions(), addresses=lambda: ["192.168.1.20"])
        port = server.bound_addr[1]
        assert f"at https://127.0.0.1:{port}/" in line
        assert f"on the network: https://192.168.1.20:{port}/" in line
        fields = json.loads(start_line(server, str(site), CommandOptions(banner="json"), addresses=lambda: []))
        assert fields["url"] == f"https://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.start()  # returns at once: shutdown came first; closes the socket


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_plain_http_to_the_tls_port_is_closed_without_traceback(data_dir: Path, site: Path, loop: str) -> None:
    proc = subprocess.Popen(
        execlib_cmd("serve", str(site), "--port", "0", "--https", "--loop", loop, "--banner", "json", "--no-config"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**CLEAN_ENV, "EXECLIB_DATA_DIR": str(data_dir)},
    )
    try:
        url = json.loads(read_line(proc))["url"]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                answer = raw.recv(65536)
            except ConnectionResetError:
                answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1."), answer
        # still serving
        assert httpx.get(url, verify=trusting(data_dir / "ca" / "ca.pem")).status_code == 200
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert "Traceback" not in stderr, stderr
    assert "Error" not in stderr, stderr


# -- the user's own certificates ------------------------------------------------------------------


@pytest.fixture
def user_ca(tmp_path: Path) -> trustme.CA:
    return trustme.CA()


def write_pair(folder: Path, cert: trustme.LeafCert) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key_file.write_bytes(cert.private_key_pem.bytes())
    return cert_file, key_file


def test_user_certificate_is_served(tmp_path: Path, site: Path, serve, user_ca: trustme.CA, data_dir: Path) -> None:
    cert_file, key_file = write_pair(tmp_path / "certs", user_ca.issue_cert("127.0.0.1", "localhost"))
    server = serve(site, ssl_certfile=cert_file, ssl_keyfile=key_file)
    assert server.url.startswith("https://")
    with user_ca.cert_pem.tempfile() as ca_file:
        assert httpx.get(server.url, verify=trusting(ca_file)).status_code == 200
    assert not data_dir.exists()  # no local CA made for a user's own certificate


def test_user_certificate_wins_over_https(tmp_path: Path, site: Path, user_ca: trustme.CA, data_dir: Path) -> None:
    combined = tmp_path / "both.pem"
    leaf = user_ca.issue_cert("localhost")
    combined.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    tls = resolve_tls(ServerConfig(root=site, https=True, ssl_certfile=combined))
    assert tls is not None and tls.certfile == tls.keyfile == str(combined)
    assert not data_dir.exists()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("execlib: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        execlib_cmd(*args),
        env={**CLEAN_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_missing_certificate_files_are_one_line_errors(tmp_path: Path, site: Path, user_ca: trustme.CA) -> None:
    cert_file, _ = write_pair(tmp_path / "certs", user_ca.issue_cert("localhost"))
    missing = str(tmp_path / "nope.pem")
    assert_one_line_error(run_cli("serve", str(site), "--ssl-certfile", missing), "--ssl-certfile", "file not found")
    result = run_cli("serve", str(site), "--ssl-certfile", str(cert_file), "--ssl-keyfile", missing)
    assert_one_line_error(result, "--ssl-keyfile", "file not found")
    result = run_cli("serve", str(site), "--ssl-keyfile", str(cert_file))
    assert_one_line_error(result, "--ssl-keyfile", "needs --ssl-certfile")


def test_mismatched_pair_is_a_one_line_error(tmp_path: Path, site: Path, user_ca: trustme.CA) -> None:
    cert_file, _ = write_pair(tmp_path / "one", user_ca.issue_cert("localhost"))
    _, other_key = write_pair(tmp_path / "two", user_ca.issue_cert("localhost"))
    for command in ("serve", "start"):
        result = run_cli(
            command, str(site), "--port", "0", "--ssl-certfile", str(cert_file), "--ssl-keyfile", str(other_key)
        )
        assert_one_line_error(result, "does not belong to the certificate")


def test_wrong_key_password_and_not_pem_are_one_line_errors(tmp_path: Path, site: Path, user_ca: trustme.CA) -> None:
    leaf = user_ca.issue_cert("localhost")
    cert_file, _ = write_pair(tmp_path / "certs", leaf)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right"),
        )
    )
    args = ("serve", str(site), "--port", "0", "--ssl-certfile", str(cert_file), "--ssl-keyfile", str(locked))
    assert_one_line_error(run_cli(*args, "--ssl-keyfile-password", "wrong"), "cannot decrypt the key")
    assert_one_line_error(run_cli(*args), "cannot decrypt the key")  # no password: an error, never a prompt
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    assert_one_line_error(run_cli("serve", str(site), "--ssl-certfile", str(garbage)), "PEM")


def test_expired_certificate_is_a_warning_and_serves(tmp_path: Path, site: Path, user_ca: trustme.CA) -> None:
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    leaf = user_ca.issue_cert("127.0.0.1", not_before=past - datetime.timedelta(days=60), not_after=past)
    cert_file, key_file = write_pair(tmp_path / "certs", leaf)
    proc = subprocess.Popen(
        execlib_cmd(
            "serve",
            str(site),
            "--port",
            "0",
            "--banner",
            "json",
            "--ssl-certfile",
            str(cert_file),
            "--ssl-keyfile",
            str(key_file),
        ),  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CLEAN_ENV,
    )
    try:
        url = json.loads(read_line(proc))["url"]
        warning = read_line(proc, stream="stderr")
        assert "expired on" in warning and str(cert_file) in warning, warning
        assert httpx.get(url, verify=False).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_keyfile_password_is_never_shown(tmp_path: Path, site: Path, user_ca: trustme.CA) -> None:
    cert_file, _ = write_pair(tmp_path / "certs", user_ca.issue_cert("localhost"))
    env = {"EXECLIB_SSL_KEYFILE_PASSWORD": "s3cret"}
    shown = run_cli("config", str(site), "--ssl-certfile", str(cert_file), "--no-config", env=env)
    assert shown.returncode == 0 and "s3cret" not in shown.stdout and '"***"' in shown.stdout
    error = run_cli("serve", str(site), "--no-config", env=env)
    assert_one_line_error(error, "EXECLIB_SSL_KEYFILE_PASSWORD", "needs")
    assert "s3cret" not in error.stderr


def test_https_options_come_from_env_and_files(tmp_path: Path, site: Path) -> None:
    assert load_config({"root": str(site)}, env={"EXECLIB_HTTPS": "1"}, use_files=False).config.https is True
    (tmp_path / "execlib.toml").write_text('https = true\nssl-certfile = "certs/c.pem"\n')
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "c.pem").write_text("x")
    config = load_config({"root": str(site)}, env={}, config_file=str(tmp_path / "execlib.toml")).config
    assert config.https and os.fspath(config.ssl_certfile) == str(tmp_path / "certs" / "c.pem")


def test_missing_cryptography_names_the_extra(tmp_path: Path, site: Path, data_dir: Path) -> None:
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from execlib.cli import main\n"
        f"sys.exit(main(['serve', {str(site)!r}, '--https', '--no-config']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLEAN_ENV, timeout=40)
    assert_one_line_error(result, "pip install 'execlib[https]'")


def test_serving_without_tls_does_not_import_cryptography() -> None:
    code = (
        "import sys, execlib, execlib.cli.serve, execlib.server.server, execlib.tls\n"
        "print('cryptography' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLEAN_ENV, timeout=40)
    assert result.stdout.strip() == "False", result


# -- execlib https ca-path / trust ----------------------------------------------------------------


def test_ca_path_creates_then_prints_the_same_ca(data_dir: Path) -> None:
    env = {"EXECLIB_DATA_DIR": str(data_dir)}
    first = run_cli("https", "ca-path", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(data_dir / "ca" / "ca.pem")
    content = (data_dir / "ca" / "ca.pem").read_bytes()
    assert run_cli("https", "ca-path", env=env).stdout == first.stdout
    assert (data_dir / "ca" / "ca.pem").read_bytes() == content


def test_trust_installs_into_the_given_folder_and_runs_the_command(tmp_path: Path, data_dir: Path) -> None:
    store, marker = tmp_path / "store", tmp_path / "ran"
    store.mkdir()
    command = shlex.join([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"])
    env = {"EXECLIB_DATA_DIR": str(data_dir), "EXECLIB_CA_TRUST_DIR": str(store), "EXECLIB_CA_TRUST_COMMAND": command}
    result = run_cli("https", "trust", env=env)
    assert result.returncode == 0, result.stderr
    installed = list(store.iterdir())
    assert len(installed) == 1 and re.fullmatch(r"execlib-[0-9a-f]{8}\.crt", installed[0].name)
    assert installed[0].read_bytes() == (data_dir / "ca" / "ca.pem").read_bytes()
    assert stat.S_IMODE(installed[0].stat().st_mode) == 0o644
    assert marker.exists()
    assert f"installed the execlib CA as {installed[0]}" in result.stdout
    assert 'certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n execlib-' in result.stdout


def test_trust_reports_a_failing_command(tmp_path: Path, data_dir: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    command = shlex.join([sys.executable, "-c", "import sys; sys.exit('no permission')"])
    env = {"EXECLIB_DATA_DIR": str(data_dir), "EXECLIB_CA_TRUST_DIR": str(store), "EXECLIB_CA_TRUST_COMMAND": command}
    result = run_cli("https", "trust", env=env)
    assert result.returncode == 1
    assert "failed (exit status 1): no permission" in result.stderr and "Traceback" not in result.stderr


def test_trust_prints_what_to_run_where_it_cannot_install(tmp_path: Path, data_dir: Path) -> None:
    env = {"EXECLIB_DATA_DIR": str(data_dir), "EXECLIB_CA_TRUST_DIR": str(tmp_path / "absent")}
    result = run_cli("https", "trust", env=env)
    assert result.returncode == 1, result
    ca_file = str(data_dir / "ca" / "ca.pem")
    assert f"sudo cp {ca_file} {tmp_path / 'absent'}/execlib-" in result.stdout
    assert "sudo update-ca-certificates" in result.stdout
    assert 'certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n execlib-' in result.stdout
    assert not (tmp_path / "absent").exists()


def test_trust_needs_root_for_a_folder_it_cannot_write(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    target = TrustTarget(str(store), "true")
    assert can_install(target, is_root=True)
    os.chmod(store, 0o555)
    try:
        assert can_install(target, is_root=False) is (os.geteuid() == 0)  # root may write anyway
    finally:
        os.chmod(store, 0o755)
    assert system_steps("/ca.pem", "abcd1234", target)[-1] == "sudo true"


# -- execlib start / status / stop -----------------------------------------------------------------


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # whatever a failed test left running in this folder
    from .lifecycle_support import processes_mentioning

    for pid in processes_mentioning(str(tmp_path)):
        kill_tree(pid)


def test_start_status_stop_with_https(lab_dir: Path, site: Path) -> None:
    data = lab_dir / "data"
    env = {"EXECLIB_DATA_DIR": str(data)}
    pid_file = lab_dir / "https.pid"
    started = run_cli("start", str(site), "--port", "0", "--https", "--pid-file", str(pid_file), "--no-config", env=env)
    assert started.returncode == 0, started.stderr
    match = re.search(r"at (https://127\.0\.0\.1:\d+/) \(pid (\d+)\)", started.stdout)
    assert match, started.stdout
    url, pid = match.group(1), int(match.group(2))
    assert pid_file_data(pid_file)["scheme"] == "https"
    assert httpx.get(url, verify=trusting(data / "ca" / "ca.pem")).status_code == 200

    status = run_cli("status", "--pid-file", str(pid_file), "--json")
    state = json.loads(status.stdout)
    assert status.returncode == 0 and state["healthy"] and state["url"] == url and state["pid"] == pid
    text = run_cli("status", "--pid-file", str(pid_file))
    assert f"running: pid {pid} at {url}" in text.stdout
    assert run_cli("status", "--pid-file", str(pid_file), "--url", url).returncode == 0

    # the same folder again on the same port: named as already served, at its https URL
    port = url.rsplit(":", 1)[1].strip("/")
    again = run_cli("serve", str(site), "--port", port, "--https", "--no-config", env=env)
    assert again.returncode != 0 and url in again.stderr, again.stderr

    stopped = run_cli("stop", "--pid-file", str(pid_file))
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: gone(pid), 10, message="the server to exit")
    assert run_cli("status", "--pid-file", str(pid_file)).returncode == 1


def test_start_with_a_key_password_keeps_it_off_the_command_line(
    lab_dir: Path, site: Path, user_ca: trustme.CA
) -> None:
    leaf = user_ca.issue_cert("127.0.0.1")
    cert_file, _ = write_pair(lab_dir / "certs", leaf)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    locked = lab_dir / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    pid_file = lab_dir / "pw.pid"
    args = ["--ssl-certfile", str(cert_file), "--ssl-keyfile", str(locked), "--ssl-keyfile-password", "pw"]
    started = run_cli("start", str(site), "--port", "0", "--pid-file", str(pid_file), "--no-config", *args)
    assert started.returncode == 0, started.stderr
    pid = pid_file_data(pid_file)["pid"]
    try:
        assert "pw" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert run_cli("status", "--pid-file", str(pid_file)).returncode == 0
    finally:
        assert run_cli("stop", "--pid-file", str(pid_file)).returncode == 0


def test_serve_background_with_https_returns_the_https_url(lab_dir: Path, site: Path, data_dir: Path) -> None:
    import execlib

    pid_file = lab_dir / "bg.pid"
    url = execlib.serve_background(site, port=0, https=True, pid_path=pid_file)
    try:
        assert url.startswith("https://127.0.0.1:")
        assert httpx.get(url, verify=trusting(data_dir / "ca" / "ca.pem")).status_code == 200
        assert execlib.status(pid_file).healthy
    finally:
        execlib.stop(pid_file)


def test_concurrent_leaf_issues_leave_a_matching_pair(data_dir: Path) -> None:
    ca = ensure_ca(ca_folder())
    barrier = threading.Barrier(6)
    paths: list[str] = []

    def issue() -> None:
        barrier.wait()
        paths.append(ensure_leaf(ca, leaf_folder(), addresses=lambda: LAN, hostname="devbox", renew_days=400))

    threads = [threading.Thread(target=issue) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(paths) == 6 and len(set(paths)) == 1
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(paths[0])  # key and certificate belong together
    assert [name for name in os.listdir(leaf_folder()) if name.startswith(".")] == []  # no temporary file left
