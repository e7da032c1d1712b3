"""Run the shipped nginx configuration for real (private prefix, loopback ports)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


class UvicornThread:
    """Serve ``app`` on the reserved socket ``sock`` (uvicorn listens on it and closes it at
    exit)."""

    def __init__(self, app: Any, sock: socket.socket):
        self.port = int(sock.getsockname()[1])
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        end = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def render_site(
    prefix: Path, *, listen: int, portal: int, rempart: int, token: str, fail_closed: bool = False
) -> Path:
    """The shipped files with this test's ports and paths substituted, plus a main file."""
    conf = prefix / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for d in ("logs", "cache", "tmp"):
        (prefix / d).mkdir(exist_ok=True)
    http = (DEPLOY / "rempart-http.conf").read_text()
    http = http.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{rempart};")
    http = http.replace("/var/cache/nginx/rempart", str(prefix / "cache"))
    (conf / "rempart-http.conf").write_text(http)
    shutil.copy(DEPLOY / "rempart-check.conf", conf / "rempart-check.conf")
    shutil.copy(DEPLOY / "rempart-enforce.conf", conf / "rempart-enforce.conf")
    (conf / "rempart-token.conf").write_text(f'proxy_set_header Authorization "Bearer {token}";\n')
    site = (DEPLOY / "portal.conf").read_text()
    site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{portal};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    site = site.replace("/var/log/nginx/portal.access.log", str(prefix / "logs" / "access.log"))
    if fail_closed:
        site = site.replace('set $rempart_fail_closed "";', 'set $rempart_fail_closed "1";')
    (conf / "portal.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    tmp = prefix / "tmp"
    (conf / "nginx.conf").write_text(f"""{user}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include rempart-http.conf;
    include portal.conf;
}}
""")
    return conf / "nginx.conf"


class Nginx:
    """nginx on ``main_conf``, listening on the reserved socket ``sock`` itself: nginx inherits
    it (the ``NGINX`` environment variable names inherited listening sockets, the mechanism of
    its binary upgrade) instead of binding the port again, so no other process can take the
    port between its reservation and nginx's start."""

    def __init__(self, prefix: Path, main_conf: Path, sock: socket.socket):
        self.prefix = prefix
        self.conf = main_conf
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        assert NGINX is not None
        test = subprocess.run(
            [NGINX, "-t", "-p", str(self.prefix), "-c", str(self.conf)],
            capture_output=True,
            text=True,
            check=False,
        )
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {test.stderr}")
        self.sock.listen(128)
        fd = self.sock.fileno()
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(fd,),
            env={**os.environ, "NGINX": f"{fd};"},
        )
        try:
            self._wait_ready()
        finally:
            # nginx holds its own copy of the socket now (or has exited).
            self.sock.close()
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"nginx exited: {err.strip()}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/static/x", timeout=0.5)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
