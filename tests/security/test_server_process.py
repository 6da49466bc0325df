"""Review rows 15 and 17 against a real `medvision serve` process, and stopping it by pid.

One server for the module (started once: a few seconds). Row 15 is about what the session
cookie can protect (docs/security.md, "Cookie"): written by page script, SameSite=Strict,
Secure on HTTPS, never HttpOnly; the tests pin what the app sets.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MEDVISION = str(Path(sys.executable).with_name("medvision"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Server:
    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        env = dict(
            os.environ, MEDVISION_HOME=str(home), MEDVISION_ADMIN_PASSWORD="tulip-river-quartz"
        )
        env.pop("MEDVISION_DATABASE_URL", None)
        env.pop("MEDVISION_PAGE_ERRORS", None)  # served as a hospital would: messages
        self.process = subprocess.Popen(
            [MEDVISION, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stdout.read().decode()
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise AssertionError("the server did not answer /_stcore/health within 90 s")

    def server_pids(self) -> list[int]:
        return _children(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                for pid in [*self.server_pids(), self.process.pid]:
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("served-home"))
    try:
        yield running
    finally:
        running.stop()


def _websocket_status(port: int, origin: str) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n"
        f"Origin: {origin}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        status_line = connection.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_row17_xsrf_and_websocket_origin_are_checked(server: Server) -> None:
    """row 17: an upload without the XSRF token is refused (403); a websocket from another
    origin is refused (403), the app's own origin is accepted (101)."""
    upload = urllib.request.Request(
        f"{server.base}/_stcore/upload_file/some-session/some-file",
        data=b"--x\r\nContent-Disposition: form-data; name=file; filename=a.png\r\n\r\nx\r\n--x--",
        method="PUT",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(upload, timeout=10)
    assert refused.value.code == 403
    assert _websocket_status(server.port, "http://evil.example") == 403
    assert _websocket_status(server.port, f"http://127.0.0.1:{server.port}") == 101


def test_d6_the_server_hides_error_details(server: Server) -> None:
    """D6: the Streamlit server runs with client.showErrorDetails = none (no traceback in a
    rater's browser) and a minimal toolbar."""
    [child] = server.server_pids()
    argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    flags = dict(zip(argv, argv[1:], strict=False))
    assert flags[b"--client.showErrorDetails"] == b"none"
    assert flags[b"--client.toolbarMode"] == b"minimal"


def test_row15_the_cookie_is_samesite_strict_and_secure_on_https() -> None:
    """row 15: what the app's cookie script sets (it cannot be HttpOnly: page script writes
    it; docs/security.md says what that means)."""
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from workbench.access import _write_cookie

        _write_cookie("token-value")

    app = AppTest.from_function(page, default_timeout=30).run()
    scripts = [p.srcdoc for p in _protos(app._tree) if getattr(p, "srcdoc", "")]
    [script] = [text for text in scripts if "medvision_session=token-value" in text]
    assert "SameSite=Strict" in script and "Path=/" in script
    # Secure exactly when the page is served over HTTPS (behind the TLS proxy).
    assert "protocol === 'https:' ? '; Secure'" in script


def _protos(node) -> list:  # noqa: ANN001
    found = [node.proto] if getattr(node, "proto", None) is not None else []
    for child in getattr(node, "children", {}).values():
        found += _protos(child)
    return found


def test_sigterm_to_medvision_serve_stops_the_streamlit_server(tmp_path: Path) -> None:
    """SIGTERM to `medvision serve` (stopping it by pid) stops the Streamlit server too (at
    ebb17df the server kept running and serving)."""
    running = Server(tmp_path / "home")
    try:
        [child] = running.server_pids()
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(30) == 0
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child), "the Streamlit server outlived medvision serve"
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"{running.base}/_stcore/health", timeout=2)
    finally:
        running.stop()
