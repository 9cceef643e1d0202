"""PostgreSQL on loopback, started by the project beside Mosquitto and Kafka (``ioc brokers``).

Debian's ``postgresql`` package (``apt-get install -y postgresql`` when missing and we are
root): ``initdb`` once, then ``postgres -D DATA -p PORT`` listening on 127.0.0.1 only, no
Unix socket.  The cluster has one role ``ioc`` (the owner of database ``ioc``) with a
random password, kept in ``<data-dir>/postgres/password`` (mode 0600); clients log in
with SCRAM-SHA-256 over TCP::

    <data-dir>/postgres/   postgres.log  postgres.pid  password  data -> the cluster

PostgreSQL refuses to run as root.  As root the cluster is owned by the ``postgres`` user
(made by the Debian package) and lives where that user can reach it -- under
``/var/tmp/ioc-postgres/`` (a test's data folder under ``/tmp/pytest-of-root`` is closed to
other users) -- and ``data`` is a symbolic link to it; the server process itself runs as
``postgres`` (no ``su``/``runuser`` in between, so the PID file holds the server's PID).

:attr:`_Postgres.url` is ``postgresql://ioc:PASSWORD@127.0.0.1:PORT/ioc``; what is
printed or logged is :func:`ingest.sources.redact`'s (``postgresql://ioc:***@…``).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from ioc.brokers import HOST, BrokerError, Which, _Broker, _last_error_line, _require

__all__ = ["DATABASE", "ROLE", "Postgres", "pg_program"]

ROLE = "ioc"
DATABASE = "ioc"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_ROOT_CLUSTERS = Path("/var/tmp/ioc-postgres")


def pg_program(name: str) -> str | None:
    """``initdb``/``postgres``/``pg_ctl`` of the newest installed server (Debian keeps them in
    ``/usr/lib/postgresql/<major>/bin``, off the PATH), else from the PATH."""
    def major(path: str) -> int:
        m = re.search(r"/postgresql/(\d+)/bin/", path)
        return int(m.group(1)) if m else 0

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=major)
    if found:
        return found[-1]
    return shutil.which(name)


class Postgres(_Broker):
    """The project's PostgreSQL cluster of one data folder."""

    name = "postgres"
    which: Which = "postgres"
    marker = b"postgres"
    port_option = "--postgres-port"
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(self, folder: Path, port: int, say: Callable[[str], None]):
        super().__init__(folder, port, say)
        self.password_file = folder / "password"
        self._owner: pwd.struct_passwd | None = None

    # -- where the cluster lives and who runs it ---------------------------------------------
    @property
    def data(self) -> Path:
        """The cluster folder (``<folder>/data``, a link to it when we are root)."""
        return self.dir / "data"

    @property
    def config_file(self) -> Path:
        return self.data.resolve()     # the marker a running server's command line carries (``-D``)

    def _cluster_dir(self) -> Path:
        if os.geteuid() != 0:
            return self.data
        digest = hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:16]
        return _ROOT_CLUSTERS / digest

    def _run_as(self) -> pwd.struct_passwd | None:
        """The user the server runs as: ``postgres`` when we are root, else ourselves (None)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise BrokerError("we are root and there is no 'postgres' user to run PostgreSQL as "
                              "(apt-get install -y postgresql makes it)") from None

    # -- _Broker parts ----------------------------------------------------------------------
    def address(self, port: int | None = None) -> str:
        return f"postgresql://{ROLE}:***@{HOST}:{port or self.port}/{DATABASE}"

    @property
    def url(self) -> str:
        """The address with the password: for clients, never for output."""
        return f"postgresql://{ROLE}:{self.password()}@{HOST}:{self.port}/{DATABASE}"

    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError:
            raise BrokerError(f"{self.password_file}: no password (start PostgreSQL with 'ioc brokers start')") \
                from None

    def running_port(self) -> int | None:
        try:
            m = re.search(r"^port\s*=\s*(\d+)", (self.data / "postgresql.auto.conf").read_text(), re.M)
        except OSError:
            return None
        return int(m.group(1)) if m else None

    def prepare(self) -> list[str]:
        postgres = pg_program("postgres")
        if postgres is None:
            _require("pg_ctlcluster", ["postgresql"], self.say, self.dir / "install.log")
            postgres = pg_program("postgres")
        initdb = pg_program("initdb")
        if postgres is None or initdb is None:
            raise BrokerError("PostgreSQL's server programs not found (sudo apt-get install -y postgresql)")
        owner = self._run_as()
        self.dir.mkdir(parents=True, exist_ok=True)
        cluster = self._cluster_dir()
        if not (cluster / "PG_VERSION").exists():
            self._initdb(initdb, cluster, owner)
        if cluster != self.data and not self.data.is_symlink():
            self.data.symlink_to(cluster)
        # the port lives in the cluster's own settings file, so `status` can read it back
        auto = cluster / "postgresql.auto.conf"
        text = (f"# Written by ioc brokers start.\nport = {self.port}\nlisten_addresses = '{HOST}'\n"
                f"unix_socket_directories = ''\npassword_encryption = 'scram-sha-256'\n"
                f"fsync = on\nmax_connections = 100\n")
        if not auto.exists() or auto.read_text() != text:
            auto.write_text(text)
            if owner is not None:
                os.chown(auto, owner.pw_uid, owner.pw_gid)
        self._owner = owner
        return [postgres, "-D", str(cluster)]

    def _initdb(self, initdb: str, cluster: Path, owner: pwd.struct_passwd | None) -> None:
        self.say(f"postgres: creating the cluster in {cluster} (once)")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(cluster)          # a half-made cluster of an earlier, failed attempt
        cluster.mkdir(parents=True, mode=0o700)
        secret = secrets.token_urlsafe(24)
        pwfile = cluster.parent / f".{cluster.name}.pw"
        pwfile.write_text(secret + "\n")
        os.chmod(pwfile, 0o600)
        if owner is not None:
            os.chown(cluster.parent, 0, 0)
            os.chmod(cluster.parent, 0o755)
            os.chown(cluster, owner.pw_uid, owner.pw_gid)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        cmd = [initdb, "-D", str(cluster), "-U", ROLE, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
               "--auth-local=reject", "-E", "UTF8", "--locale=C.UTF-8"]
        try:
            with open(self.log, "ab") as out:
                out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} ioc brokers start: {' '.join(cmd)}\n"
                          .encode())
                out.flush()
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=180, **_as_user(owner)).returncode
        finally:
            pwfile.unlink(missing_ok=True)
        if rc != 0:
            raise BrokerError(f"initdb of {cluster} failed (exit {rc}): {_last_error_line(self.log)} (see {self.log})")
        self.password_file.write_text(secret + "\n")
        os.chmod(self.password_file, 0o600)

    def popen_options(self) -> dict:
        return {"cwd": self._cluster_dir(), **_as_user(self._owner)}

    def after_start(self, deadline: float) -> str:
        """Wait until the server takes logins, then make database ``ioc`` if it is missing."""
        import psycopg

        last = ""
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise BrokerError(f"postgres exited while starting: {_last_error_line(self.log)} (see {self.log})")
            try:
                with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True,
                                     connect_timeout=5) as conn:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                        return ""
                    conn.execute(f'CREATE DATABASE "{DATABASE}" OWNER "{ROLE}"')
                    return f", created database {DATABASE}"
            except psycopg.OperationalError as exc:
                last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            time.sleep(0.2)
        raise BrokerError(f"postgres on {self.address()} took no logins in time ({last}); see {self.log}")

    def remove(self) -> None:
        """Delete the cluster (stopped), also the one under /var/tmp a root run made (tests)."""
        if self.pid() is not None:
            raise BrokerError(f"postgres of {self.dir} is running; stop it first")
        cluster = self._cluster_dir()
        shutil.rmtree(cluster, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.data.unlink() if self.data.is_symlink() else shutil.rmtree(self.data)


def _as_user(owner: pwd.struct_passwd | None) -> dict:
    """``subprocess`` options that run a program as ``owner`` (nothing when None)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [],
            "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": owner.pw_dir}}
