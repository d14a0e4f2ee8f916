"""The server's own output (Daphne's access log, Django's warnings) never keeps the secret a
link carries: a password-reset key, an invitation token, an e-mail confirmation key, the
values of a query string."""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.cluster import NGINX, free_port
from tests.e2e.conftest import ROOT, _prepare, serving

SECRET = "s3cr3t-t0ken"


@pytest.fixture(scope="module")
def logged(tmp_path_factory, kimi_stub):
    tmp = tmp_path_factory.mktemp("logs")
    env = _prepare(tmp, kimi_stub)
    log = tmp / "daphne.log"
    with serving(env, log) as (_, url):
        yield url, log


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def _lines_until(log: Path, marker: str) -> str:
    """The log's text up to the line that has `marker`, once the server has written it."""
    deadline = time.monotonic() + 30
    with log.open() as f:
        text = ""
        while marker not in text:
            line = f.readline()
            if not line:
                assert time.monotonic() < deadline, f"{marker} never logged:\n{text}"
                time.sleep(0.05)  # at the end of what is written so far: look again
            text += line
    return text


def test_links_with_secrets_are_logged_without_them(logged):
    url, log = logged
    for path in (
        f"/invite/{SECRET}/",
        f"/accounts/password/reset/key/1-{SECRET}/",
        f"/accounts/confirm-email/{SECRET}/",
        f"/search/?q={SECRET}",
        f"/accounts/oidc/acme/login/callback/?code={SECRET}&state={SECRET}",
    ):
        assert _get(url + path) < 500
    _get(url + "/last-request-of-the-test/")
    text = _lines_until(log, "/last-request-of-the-test/")
    assert SECRET not in text
    # What was asked for is still there, without its secret.
    assert '"GET /invite/***/" 410' in text
    assert "Gone: /invite/***/" in text
    assert "GET /accounts/password/reset/key/***/" in text
    assert "GET /search/?q=***" in text


def test_nginx_logs_links_without_their_secrets(tmp_path):
    """The deployment's nginx log format (deploy/nginx/kimichat-log.conf)."""
    if not os.path.exists(NGINX):
        pytest.skip(f"needs nginx ({NGINX})")
    port, log = free_port(), tmp_path / "access.log"
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        "events {}\nhttp {\n"
        f"    include {ROOT / 'deploy' / 'nginx' / 'kimichat-log.conf'};\n"
        f"    access_log {log} kimichat;\n"
        f"    client_body_temp_path {tmp_path};\n    proxy_temp_path {tmp_path};\n"
        f"    fastcgi_temp_path {tmp_path};\n    uwsgi_temp_path {tmp_path};\n"
        f"    scgi_temp_path {tmp_path};\n"
        f"    server {{ listen 127.0.0.1:{port}; location / {{ return 404; }} }}\n}}\n"
    )
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)])
    try:
        url = f"http://127.0.0.1:{port}"
        while True:  # until nginx listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except ConnectionRefusedError:
                assert nginx.poll() is None, (tmp_path / "error.log").read_text()
                time.sleep(0.05)
        _get(f"{url}/invite/{SECRET}/")
        _get(f"{url}/accounts/password/reset/key/1-{SECRET}/")
        _get(f"{url}/search/?q={SECRET}&page=2")
        _get(f"{url}/last-request-of-the-test/")
        text = _lines_until(log, "/last-request-of-the-test/")
    finally:
        nginx.terminate()
        nginx.wait(10)
    assert SECRET not in text
    assert '"GET /invite/***/ HTTP/1.1" 404' in text
    assert '"GET /accounts/password/reset/key/***/ HTTP/1.1" 404' in text
    assert '"GET /search/?*** HTTP/1.1" 404' in text
