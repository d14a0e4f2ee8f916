"""A KimiChat cluster on one machine, as deploy/ describes it: nginx (Debian's package) with
deploy/nginx/kimichat-locations.conf in front of several `python -m kimichat.serve`
processes, a `manage.py db_worker`, Redis (a redis-server of its own, which the tests stop and
start again), the database (PostgreSQL where DATABASE_URL names it, else SQLite) and an S3
server (moto's, on loopback). Used by tests/e2e/test_cluster.py and `python -m bench.cluster`;
no browser here."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"
REDIS_SERVER = "/usr/bin/redis-server"
LOCATIONS = ROOT / "deploy" / "nginx" / "kimichat-locations.conf"


class Missing(Exception):
    """Something the cluster needs is not installed: the sentence says what."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _follow(process: subprocess.Popen, marker: str, log: Path) -> None:
    """Read a process's output until it prints `marker`, then keep copying it to `log`."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            out = log.open("a", buffering=1)
            out.writelines(seen)
            threading.Thread(target=out.writelines, args=(process.stdout,), daemon=True).start()
            return
    raise RuntimeError(f"{process.args!r} exited before {marker!r}:\n" + "".join(seen))


class Redis:
    """A redis-server on a port that stays the same across restarts."""

    def __init__(self, tmp: Path) -> None:
        if not os.path.exists(REDIS_SERVER):
            raise Missing(f"needs redis-server ({REDIS_SERVER}; Debian's redis-server package)")
        self.port, self.tmp = free_port(), tmp
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.tmp)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        _follow(self.process, "Ready to accept connections", self.tmp / "redis.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


class Nginx:
    """nginx in the foreground with the deployment's locations, in front of `ports`."""

    def __init__(self, tmp: Path, ports: list[int]) -> None:
        if not os.path.exists(NGINX):
            raise Missing(f"needs nginx ({NGINX}): `make test-cluster` installs Debian's nginx")
        self.port, self.tmp = free_port(), tmp
        servers = "".join(f"        server 127.0.0.1:{p};\n" for p in ports)
        temp = {name: tmp / f"nginx-{name}" for name in ("body", "proxy", "fcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir(exist_ok=True)
        self.conf = tmp / "nginx.conf"
        self.conf.write_text(
            "daemon off;\nworker_processes 1;\n"
            f"pid {tmp / 'nginx.pid'};\nerror_log {tmp / 'nginx-error.log'} warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            f"    access_log {tmp / 'nginx-access.log'};\n"
            f"    client_body_temp_path {temp['body']};\n"
            f"    proxy_temp_path {temp['proxy']};\n"
            f"    fastcgi_temp_path {temp['fcgi']};\n"
            f"    uwsgi_temp_path {temp['uwsgi']};\n"
            f"    scgi_temp_path {temp['scgi']};\n"
            "    upstream kimichat {\n" + servers + "        keepalive 16;\n    }\n"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port};\n"
            f"        include {LOCATIONS};\n"
            "    }\n"
            "}\n"
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        check = subprocess.run(
            [NGINX, "-t", "-c", str(self.conf), "-p", str(self.tmp)],
            capture_output=True,
            text=True,
        )
        if check.returncode:
            raise RuntimeError("nginx refused the configuration:\n" + check.stderr)
        self.process = subprocess.Popen([NGINX, "-c", str(self.conf), "-p", str(self.tmp)])
        # Ready once it accepts a connection (nginx prints nothing when it starts).
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("nginx exited: see nginx-error.log") from None
                threading.Event().wait(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class Cluster:
    """`size` app processes (each on a port of its own, kept across restarts), a db_worker,
    Redis, S3 and nginx. `env`: the environment every process shares."""

    def __init__(self, tmp: Path, env: dict, size: int) -> None:
        self.tmp, self.env = tmp, env
        self.ports = [free_port() for _ in range(size)]
        self.apps: list[subprocess.Popen | None] = [None] * size
        self.worker: subprocess.Popen | None = None
        self.nginx = Nginx(tmp, self.ports)
        self.redis: Redis | None = None  # the cluster's own, when a test stops it

    @property
    def url(self) -> str:
        return self.nginx.url

    def start_app(self, index: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "kimichat.serve"],
            cwd=ROOT,
            env={**self.env, "PORT": str(self.ports[index])},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _follow(process, "Listening on TCP address", self.tmp / f"app{index}.log")
        self.apps[index] = process
        return process

    def stop_app(self, index: int, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal one process and wait for it to exit: its exit status."""
        process = self.apps[index]
        assert process is not None
        process.send_signal(sig)
        code = process.wait(timeout)
        self.apps[index] = None
        return code

    def index_of(self, pid: int) -> int:
        return next(i for i, p in enumerate(self.apps) if p is not None and p.pid == pid)

    def start(self) -> None:
        for index in range(len(self.ports)):
            self.start_app(index)
        self.worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker"],
            cwd=ROOT,
            env=self.env,
            stdout=(self.tmp / "worker.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        self.nginx.start()

    def stop(self) -> None:
        self.nginx.stop()
        for process in [*self.apps, self.worker]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


@contextmanager
def database(tmp: Path):
    """A database of the cluster's own: a fresh PostgreSQL database where DATABASE_URL names
    a PostgreSQL server (dropped afterwards), else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp / 'db.sqlite3'}"
        return
    import psycopg

    base, _, _ = url.rpartition("/")
    name = f"kimichat_cluster_{secrets.token_hex(4)}"
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(env: dict) -> None:
    """What comes before a server starts (`make run`; deploy/'s kimichat-migrate unit): the
    database migrated and repaired (the bucket made), static files collected, and alice
    with her password "password"."""
    env = {
        **env,
        "DJANGO_SUPERUSER_USERNAME": "alice",
        "DJANGO_SUPERUSER_PASSWORD": "password",
        "DJANGO_SUPERUSER_EMAIL": "alice@example.com",
    }
    manage = [sys.executable, "manage.py"]
    for command in (
        ["migrate", "-v0"],
        ["repair"],
        ["collectstatic", "--noinput", "-v0"],
        ["createsuperuser", "--noinput"],
    ):
        subprocess.run(manage + command, cwd=ROOT, env=env, check=True, capture_output=True)


def cluster_env(tmp: Path, *, database_url: str, redis_url: str, kimi_url: str, s3: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(tmp / "media"),
        "MOONSHOT_API_KEY": "sk-test",
        "MOONSHOT_BASE_URL": kimi_url,
        "KIMI_MAX_RETRIES": "0",
        "KIMI_AUTO_TITLE": "false",
        "KIMI_MODELS_REFRESH": "0",
        "SECRET_KEY": "cluster-secret",
        "DEBUG": "false",
        "HOST": "127.0.0.1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SIGNUP": "open",
        "PYTHONUNBUFFERED": "1",
        "TASKS_BACKEND": "database",
        "S3_BUCKET": "kimichat-cluster",
        "S3_ENDPOINT_URL": s3,
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
        "S3_REGION": "us-east-1",
        # Leases short enough that a test sees a crash taken over within seconds.
        "ANSWER_LEASE": "5",
        "SHUTDOWN_GRACE": "20",
        "USER_MAX_CONCURRENT": "100000",
        "USER_MESSAGES_PER_MINUTE": "100000",
    }
