"""Mosquitto, a single-node Kafka (KRaft) and PostgreSQL on loopback, started by the project.

``ioc brokers start | stop | status | restart`` and, for tests, :class:`BrokerSet`::

    with BrokerSet(tmp_path, mqtt_port=free_port(), kafka_port=free_port()) as brokers:
        ...  # mqtt://127.0.0.1:<port> and 127.0.0.1:<port> are up, topics exist

- **Mosquitto** is Debian's package (``apt-get install -y mosquitto mosquitto-clients``
  when missing and we are root), run as ``mosquitto -c <data-dir>/mosquitto/mosquitto.conf``
  from the template ``deploy/mosquitto/mosquitto.conf``.
- **Kafka** is Maven Central's ``kafka_2.13`` jars, copied once by Maven from
  ``deploy/kafka/pom.xml`` into ``<data-dir>/kafka/libs`` (or a shared ``kafka_libs``
  cache), its storage formatted once with ``kafka.tools.StorageTool format --standalone``
  and run as ``java -cp 'libs/*' kafka.Kafka server.properties`` on the machine's Java 17+.
  Once it answers a metadata request, the topics ``ioc.readings`` (6 partitions),
  ``ioc.alerts`` and ``ioc.deadletter`` (1 each), ``ioc.scores`` and ``ioc.alert-events``
  (6 each) are created if missing.
- **PostgreSQL** is Debian's package, one cluster per data folder
  (:mod:`ioc.postgres_server`): the shared alert store and the workers' core state
  when the IOC runs on several machines.

Both run in their own process group (they outlive the ``ioc`` command that started
them), write stdout/stderr to a log in their data folder and have a PID file there::

    <data-dir>/mosquitto/  mosquitto.conf  mosquitto.db  mosquitto.log  mosquitto.pid
    <data-dir>/kafka/      libs/  server.properties  log4j2.properties  cluster.id
                           data/ (log.dirs)  kafka.log  kafka.pid  maven.log

Starting is idempotent (a running broker is left alone), stopping sends SIGTERM to the
PID in the PID file -- only after checking that this PID is still that broker of this
data folder -- and SIGKILL to that PID only if it has not exited in time.

Every failure a user can meet (missing program, port taken, broker died at start,
Maven offline) is a :class:`BrokerError` with one line naming what to do and the log.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ioc.paths import data_dir, deploy_dir
from processing.errors import IocError

__all__ = [
    "BrokerError", "BrokerSet", "BrokerStatus", "KAFKA_TOPICS", "add_parser", "default_data_dir",
    "ensure_kafka_libs", "find_program", "free_port", "kafka_version", "new_cluster_id",
]

Which = Literal["mqtt", "kafka", "postgres"]
BROKERS: tuple[Which, ...] = ("mqtt", "kafka", "postgres")

DEPLOY = deploy_dir()
HOST = "127.0.0.1"

#: Topics the IOC uses, with their partition counts (replication factor 1 on one node).
#: ``ioc.scores`` and ``ioc.alert-events`` (what the scoring workers publish, ``ioc.worker``) are keyed like
#: the readings, so a partition's scores come from the worker that owns that partition of the readings.
KAFKA_TOPICS: dict[str, int] = {"ioc.readings": 6, "ioc.alerts": 1, "ioc.deadletter": 1, "ioc.scores": 6,
                                "ioc.alert-events": 6}

# Small heap for a developer machine; Kafka's own scripts read the same variables.
KAFKA_HEAP_OPTS = "-Xms256m -Xmx1g"
KAFKA_JVM_OPTS = ("-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
                  "-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true")

MQTT_START_TIMEOUT_S = 15.0
KAFKA_START_TIMEOUT_S = 120.0   # a cold JVM on 2 busy cores; typically 10-15 s
MQTT_STOP_TIMEOUT_S = 10.0
KAFKA_STOP_TIMEOUT_S = 60.0     # controlled shutdown, typically 3-5 s
MAVEN_TIMEOUT_S = 900.0

# Log4j 2 for the broker: everything at INFO on stdout, which goes to kafka.log.
_LOG4J2 = """\
# Written by ioc brokers start: Kafka's log goes to stdout, redirected to kafka.log.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# The request log has a line per request: far too much for a log file.
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class BrokerError(IocError):
    """A broker could not be installed, started or stopped; the message is one line."""


@dataclass(frozen=True)
class BrokerStatus:
    """What ``ioc brokers status`` prints for one broker."""

    name: str           # "mosquitto" or "kafka"
    which: Which        # "mqtt" or "kafka" (the ``--only`` value)
    running: bool
    pid: int | None
    address: str        # mqtt://127.0.0.1:1883 or 127.0.0.1:9092
    data_dir: Path
    log: Path

    def line(self) -> str:
        state = "running" if self.running else "stopped"
        pid = f"pid {self.pid}" if self.pid else "-"
        return f"{self.name:<10} {state:<8} {pid:<11} {self.address:<24} {self.data_dir}"


def default_data_dir() -> Path:
    """``<data-dir>/brokers`` (the data folder of :func:`ioc.paths.data_dir`)."""
    return data_dir() / "brokers"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct :func:`free_port` s."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def shared_kafka_libs() -> Path:
    """The Kafka jar cache tests and benchmarks share: ``$IOC_KAFKA_LIBS``, else ``<data-dir>/cache/kafka-libs``."""
    env = os.environ.get("IOC_KAFKA_LIBS", "").strip()
    return Path(env).expanduser() if env else data_dir() / "cache" / "kafka-libs"


def new_cluster_id() -> str:
    """A Kafka cluster id as ``StorageTool random-uuid`` makes one.

    16 random bytes in URL-safe base64 without padding (22 characters); like Kafka's
    ``Uuid.randomUuid`` it never starts with ``-`` (which a command line would take for
    an option).

    >>> cid = new_cluster_id()
    >>> len(cid), cid[0] != "-", set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    (22, True, True)
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cid.startswith("-"):
            return cid


def _render(template: Path, values: dict[str, str]) -> str:
    """The template with every ``@NAME@`` replaced; a placeholder left over is a bug."""
    try:
        text = template.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BrokerError(f"{template}: template not found (run from a source checkout of the project)") from None
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise BrokerError(f"{template}: unknown placeholder(s) {', '.join(left)}")
    return text


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------
# Programs: found, or installed from Debian's packages when we are root
# --------------------------------------------------------------------------------------

def find_program(program: str) -> str | None:
    """``shutil.which`` that also looks in the sbin folders (mosquitto is /usr/sbin)."""
    found = shutil.which(program)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _require(program: str, packages: list[str], say: Callable[[str], None], log: Path) -> str:
    """The path of ``program``; installs Debian ``packages`` first if it is missing and we are root."""
    found = find_program(program)
    if found:
        return found
    hint = f"sudo apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BrokerError(f"{program} not found: install Debian's {' '.join(packages)} ({hint})")
    say(f"installing {' '.join(packages)} with apt-get (output in {log})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        ok = subprocess.run(["apt-get", "install", "-y", "-q", *packages], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env).returncode == 0
        if not ok:   # a fresh machine has empty package lists
            subprocess.run(["apt-get", "update", "-q"], stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, env=env)
            ok = subprocess.run(["apt-get", "install", "-y", "-q", *packages], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env).returncode == 0
    found = find_program(program)
    if not ok or not found:
        raise BrokerError(f"could not install {' '.join(packages)} with apt-get; see {log}")
    return found


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return 0
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major   # "1.8.0" is Java 8


# --------------------------------------------------------------------------------------
# Kafka jars from Maven Central
# --------------------------------------------------------------------------------------

def kafka_version(pom: Path = DEPLOY / "kafka" / "pom.xml") -> str:
    """The ``kafka.version`` property of ``deploy/kafka/pom.xml``."""
    try:
        m = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BrokerError(f"{pom}: not found (run from a source checkout of the project)") from None
    if not m:
        raise BrokerError(f"{pom}: no <kafka.version> property")
    return m.group(1)


def _libs_marker(libs: Path, version: str) -> Path:
    return libs / f".ioc-kafka-{version}"


def ensure_kafka_libs(libs: Path, *, pom: Path = DEPLOY / "kafka" / "pom.xml", mvn: str | None = None,
                      say: Callable[[str], None] = lambda _msg: None, log: Path | None = None) -> str:
    """Make ``libs`` hold the Kafka jars of ``pom``; returns the Kafka version.

    Cached: when ``libs`` already holds this version (a marker file written after a
    complete copy), Maven is not called. Otherwise Maven copies the jars into a
    sibling folder that replaces ``libs`` only once complete, under a lock, so a
    failed or concurrent run never leaves a half-filled ``libs``.
    """
    version = kafka_version(pom)
    if _libs_marker(libs, version).exists():
        return version
    libs.parent.mkdir(parents=True, exist_ok=True)
    log = log or libs.parent / "maven.log"
    with open(libs.parent / f".{libs.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _libs_marker(libs, version).exists():   # filled by another process meanwhile
            return version
        mvn = mvn or _require("mvn", ["maven"], say, log)
        tmp = libs.parent / f".{libs.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"fetching the jars of Kafka {version} from Maven Central with Maven (once; output in {log})")
        started = time.monotonic()
        cmd = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={tmp}"]
        with open(log, "ab") as out:
            out.write(f"\n$ {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=MAVEN_TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        if rc != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise BrokerError(f"Maven could not fetch the Kafka {version} jars (exit {rc}); see {log}")
        _libs_marker(tmp, version).touch()
        if libs.exists():
            if any(libs.iterdir()) and not any(libs.glob(".ioc-kafka-*")):
                shutil.rmtree(tmp, ignore_errors=True)
                raise BrokerError(f"{libs} holds files that are not Kafka jars fetched by ioc brokers; "
                                  f"choose a new or empty folder for the jars")
            shutil.rmtree(libs)   # jars of another Kafka version
        tmp.rename(libs)
        say(f"Kafka {version}: {sum(1 for _ in libs.glob('*.jar'))} jars in {libs} "
            f"({time.monotonic() - started:.0f} s)")
    return version


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------

def _port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int, proc: subprocess.Popen | None = None) -> bool:
    """Is ``pid`` a live (not zombie) process? Reaps it if it is our exited child."""
    if proc is not None and proc.pid == pid:
        return proc.poll() is None
    with contextlib.suppress(ChildProcessError):
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


def _rotate(log: Path, limit: int = 64 << 20) -> None:
    """Keep one previous log once a log passes ``limit`` bytes (nothing else rotates them)."""
    with contextlib.suppress(OSError):
        if log.stat().st_size > limit:
            log.replace(log.with_name(log.name + ".1"))


def _last_error_line(log: Path) -> str:
    """The last line of ``log`` that looks like an error (or its last line), shortened."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    pick = next((ln for ln in reversed(lines) if re.search(r"ERROR|Error|Exception|FATAL", ln)), lines[-1])
    return pick if len(pick) <= 240 else pick[:237] + "..."


class _Broker:
    """One broker process: its folder, config, PID file and log."""

    name: str = ""
    which: Which = "mqtt"
    marker: bytes = b""            # a word its command line must contain
    port_option: str = ""          # the command-line option that moves it
    stop_timeout_s: float = 10.0

    def __init__(self, folder: Path, port: int, say: Callable[[str], None]):
        self.dir = folder
        self.port = port
        self.say = say
        self.pid_file = folder / f"{self.name}.pid"
        self.log = folder / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    # -- subclass parts ------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        raise NotImplementedError

    def address(self, port: int | None = None) -> str:
        raise NotImplementedError

    def running_port(self) -> int | None:
        """The port in the config the running broker was started with."""
        raise NotImplementedError

    def prepare(self) -> list[str]:
        """Install/render/format; returns the command line."""
        raise NotImplementedError

    def ports(self) -> list[int]:
        return [self.port]

    def wait_ready(self, pid: int, deadline: float) -> None:
        self._wait_port(pid, self.port, deadline)

    def after_start(self, deadline: float) -> str:
        """Work once the broker answers (topics); returns a note for the start line."""
        return ""

    def popen_options(self) -> dict[str, Any]:
        """Extra ``subprocess.Popen`` options for the server (another user, another folder)."""
        return {}

    # -- shared --------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The PID of this folder's running broker, from the PID file; None if stopped.

        A PID file whose process is gone, or is now some other program, is stale.
        """
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 0 or not _alive(pid, self.proc):
            return None
        cmd = _cmdline(pid)
        if cmd and (self.marker not in cmd or str(self.config_file).encode() not in cmd):
            return None   # the PID was reused by another process
        return pid

    def status(self) -> BrokerStatus:
        pid = self.pid()
        port = (self.running_port() if pid else None) or self.port
        return BrokerStatus(self.name, self.which, pid is not None, pid, self.address(port), self.dir, self.log)

    def start(self, timeout: float) -> str:
        pid = self.pid()
        if pid is not None:
            running = self.running_port()
            if running is not None and running != self.port:
                raise BrokerError(f"{self.name} is already running on {self.address(running)}, not "
                                  f"{self.address()} (pid {pid}, {self.dir}); stop it first")
            note = self.after_start(time.monotonic() + timeout)
            return f"{self.name}: already running, pid {pid}, {self.address()}{note}"
        self.pid_file.unlink(missing_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = self.prepare()
        for port in self.ports():
            if _port_open(port):
                raise BrokerError(f"{HOST}:{port} is already in use by another program (not this {self.name} "
                                  f"of {self.dir}); stop it or choose another port with {self.port_option}")
        _rotate(self.log)
        started = time.monotonic()
        deadline = started + timeout
        with open(self.log, "ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} ioc brokers start: {' '.join(cmd)}\n".encode())
            out.flush()
            options: dict[str, Any] = {"cwd": self.dir, **self.popen_options()}
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, **options)
        pid = self.proc.pid
        self.pid_file.write_text(f"{pid}\n")
        try:
            self.wait_ready(pid, deadline)
            note = self.after_start(deadline)
        except BrokerError:
            self._terminate(pid, 5.0)
            self.pid_file.unlink(missing_ok=True)
            raise
        return f"{self.name}: started, pid {pid}, {self.address()}{note} ({time.monotonic() - started:.1f} s)"

    def stop(self) -> str:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return f"{self.name}: not running"
        started = time.monotonic()
        how = self._terminate(pid, self.stop_timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return f"{self.name}: stopped, pid {pid}{how} ({time.monotonic() - started:.1f} s)"

    def _terminate(self, pid: int, timeout: float) -> str:
        """SIGTERM ``pid``, wait, SIGKILL ``pid`` if it is still there; returns a note."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid, self.proc):
                return ""
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while _alive(pid, self.proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        return f" (killed: no exit {timeout:.0f} s after SIGTERM)"

    def _wait_port(self, pid: int, port: int, deadline: float) -> None:
        while True:
            if not _alive(pid, self.proc):
                code = self.proc.returncode if self.proc is not None and self.proc.pid == pid else None
                raise BrokerError(f"{self.name} exited{f' with code {code}' if code is not None else ''} while "
                                  f"starting: {_last_error_line(self.log)} (see {self.log})")
            if _port_open(port, timeout=0.25):
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"{self.name} (pid {pid}) did not accept connections on {HOST}:{port} in time; "
                                  f"see {self.log}")
            time.sleep(0.1)


class _Mosquitto(_Broker):
    name = "mosquitto"
    which: Which = "mqtt"
    marker = b"mosquitto"
    port_option = "--mqtt-port"
    stop_timeout_s = MQTT_STOP_TIMEOUT_S

    @property
    def config_file(self) -> Path:
        return self.dir / "mosquitto.conf"

    def address(self, port: int | None = None) -> str:
        return f"mqtt://{HOST}:{port or self.port}"

    def running_port(self) -> int | None:
        try:
            m = re.search(r"^listener\s+(\d+)", self.config_file.read_text(), re.M)
        except OSError:
            return None
        return int(m.group(1)) if m else None

    def prepare(self) -> list[str]:
        mosquitto = _require("mosquitto", ["mosquitto", "mosquitto-clients"], self.say, self.dir / "install.log")
        user = pwd.getpwuid(os.geteuid()).pw_name
        text = _render(DEPLOY / "mosquitto" / "mosquitto.conf",
                       {"BIND": HOST, "PORT": str(self.port), "DATA_DIR": str(self.dir), "USER": user})
        header = f"# Rendered by `ioc brokers start` from {DEPLOY / 'mosquitto' / 'mosquitto.conf'}; edit that.\n"
        _write_if_changed(self.config_file, header + text)
        return [mosquitto, "-c", str(self.config_file)]


class _Kafka(_Broker):
    name = "kafka"
    which: Which = "kafka"
    marker = b"kafka.Kafka"
    port_option = "--kafka-port/--kafka-controller-port"
    stop_timeout_s = KAFKA_STOP_TIMEOUT_S

    def __init__(self, folder: Path, port: int, controller_port: int, libs: Path, say: Callable[[str], None]):
        super().__init__(folder, port, say)
        self.controller_port = controller_port
        self.libs = libs
        self.data = folder / "data"

    @property
    def config_file(self) -> Path:
        return self.dir / "server.properties"

    def address(self, port: int | None = None) -> str:
        return f"{HOST}:{port or self.port}"

    def running_port(self) -> int | None:
        try:
            m = re.search(r"^listeners=PLAINTEXT://[^:]+:(\d+)", self.config_file.read_text(), re.M)
        except OSError:
            return None
        return int(m.group(1)) if m else None

    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    def _java_cmd(self, java: str, main: str, *args: str) -> list[str]:
        heap = os.environ.get("KAFKA_HEAP_OPTS", KAFKA_HEAP_OPTS).split()
        extra = os.environ.get("KAFKA_OPTS", "").split()
        return [java, *heap, *KAFKA_JVM_OPTS.split(), *extra,
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}", f"-Dkafka.logs.dir={self.dir}",
                "-cp", f"{self.libs}/*", main, *args]

    def prepare(self) -> list[str]:
        java = _require("java", ["default-jre-headless"], self.say, self.dir / "install.log")
        major = _java_major(java)
        if major < 17:
            raise BrokerError(f"Kafka 4 needs Java 17 or newer; {java} is Java {major or '?'} "
                              f"(sudo apt-get install -y openjdk-17-jre-headless)")
        ensure_kafka_libs(self.libs, say=self.say, log=self.dir / "maven.log")
        if self.controller_port == self.port:
            raise BrokerError(f"Kafka's client and controller ports are both {self.port}; choose two ports")
        text = _render(DEPLOY / "kafka" / "server.properties",
                       {"KAFKA_PORT": str(self.port), "CONTROLLER_PORT": str(self.controller_port),
                        "LOG_DIRS": str(self.data), "KAFKA_DIR": str(self.dir)})
        header = f"# Rendered by `ioc brokers start` from {DEPLOY / 'kafka' / 'server.properties'}; edit that.\n"
        _write_if_changed(self.config_file, header + text)
        _write_if_changed(self.dir / "log4j2.properties", _LOG4J2)
        if not (self.data / "meta.properties").exists():
            self._format(java)
        return self._java_cmd(java, "kafka.Kafka", str(self.config_file))

    def _format(self, java: str) -> None:
        id_file = self.dir / "cluster.id"
        cluster_id = id_file.read_text().strip() if id_file.exists() else ""
        if not cluster_id:
            cluster_id = new_cluster_id()
            id_file.write_text(cluster_id + "\n")
        self.say(f"kafka: formatting KRaft storage in {self.data} (cluster id {cluster_id}, once)")
        cmd = self._java_cmd(java, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id,
                             "-c", str(self.config_file))
        with open(self.log, "ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} ioc brokers start: {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                rc = subprocess.run(cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=180).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        if rc != 0 or not (self.data / "meta.properties").exists():
            raise BrokerError(f"formatting Kafka storage in {self.data} failed (exit {rc}): "
                              f"{_last_error_line(self.log)} (see {self.log})")

    def wait_ready(self, pid: int, deadline: float) -> None:
        self._wait_port(pid, self.port, deadline)

    def after_start(self, deadline: float) -> str:
        created = _run_coroutine(lambda: self._ensure_topics(deadline))
        made = f", created {', '.join(created)}" if created else ""
        return f", topics {' '.join(f'{t}({n})' for t, n in KAFKA_TOPICS.items())}{made}"

    async def _ensure_topics(self, deadline: float) -> list[str]:
        """Wait for a metadata answer, create missing topics, wait for their leaders."""
        import asyncio

        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import KafkaError

        bootstrap = self.address()
        last = ""
        created: list[str] = []
        while True:
            pid = self.pid()
            if pid is None:
                raise BrokerError(f"kafka exited while starting: {_last_error_line(self.log)} (see {self.log})")
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000,
                                        client_id="ioc-brokers")
            try:
                await admin.start()
                existing = set(await admin.list_topics())
                missing = [t for t in KAFKA_TOPICS if t not in existing]
                if missing:
                    resp = await admin.create_topics(
                        [NewTopic(t, KAFKA_TOPICS[t], 1) for t in missing], timeout_ms=30_000)
                    bad = [(t, code, msg) for t, code, msg in resp.topic_errors if code not in (0, 36)]
                    if bad:   # 36: TOPIC_ALREADY_EXISTS (created meanwhile)
                        t, code, msg = bad[0]
                        raise BrokerError(f"kafka: creating topic {t} failed (error {code}: {msg}); see {self.log}")
                    created += missing
                problem = await self._topics_problem(admin)
                if problem is None:
                    return created
                last = problem
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
            if time.monotonic() > deadline:
                raise BrokerError(f"kafka (pid {pid}) on {bootstrap} did not answer metadata requests in time "
                                  f"({last}); see {self.log}")
            await asyncio.sleep(0.25)

    async def _topics_problem(self, admin) -> str | None:
        """None once every partition of every IOC topic has a leader (producers can write at
        once); else what is still wrong. A topic with too few partitions is an error."""
        described = {t["topic"]: t for t in await admin.describe_topics(list(KAFKA_TOPICS))}
        for name, partitions in KAFKA_TOPICS.items():
            topic = described.get(name)
            if topic is None or topic.get("error_code", 0) != 0:
                return f"topic {name} not visible yet"
            if len(topic["partitions"]) < partitions:
                raise BrokerError(f"kafka: topic {name} on {self.address()} has {len(topic['partitions'])} "
                                  f"partition(s), the IOC needs {partitions}; delete or alter it")
            if any(p.get("error_code", 0) != 0 or p.get("leader", -1) < 0 for p in topic["partitions"]):
                return f"partitions of {name} without a leader yet"
        return None


def _run_coroutine(make: Callable[[], Any]) -> Any:
    """Run a coroutine to its end from sync code, also when called inside a running event
    loop (then in a helper thread; better still, call BrokerSet methods from async code
    with ``await asyncio.to_thread(...)`` so that loop keeps running meanwhile)."""
    import asyncio
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ioc-brokers") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


# --------------------------------------------------------------------------------------
# The pair
# --------------------------------------------------------------------------------------

class BrokerSet:
    """Mosquitto, Kafka and PostgreSQL of one data folder; a context manager that starts and stops them.

    ``kafka_controller_port`` defaults to ``kafka_port + 1``; ``kafka_libs`` (default
    ``<data_dir>/kafka/libs``) may be a cache shared by several data folders. ``say``
    receives progress lines (installing, fetching jars, formatting).

    The methods block until the brokers are up (Kafka: ~10 s) or down; from async code
    call them as ``await asyncio.to_thread(brokers.restart, "kafka")`` so the event loop
    (and the consumers under test) keep running meanwhile.
    """

    def __init__(self, data_dir: Path | str | None = None, mqtt_port: int = 1883, kafka_port: int = 9092, *,
                 kafka_controller_port: int | None = None, kafka_libs: Path | str | None = None,
                 postgres_port: int = 5432, say: Callable[[str], None] = lambda _msg: None):
        from ioc.postgres_server import Postgres

        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir = self.data_dir.expanduser().resolve()
        self.mqtt_port = mqtt_port
        self.kafka_port = kafka_port
        self.kafka_controller_port = kafka_controller_port or kafka_port + 1
        self.postgres_port = postgres_port
        libs = Path(kafka_libs).expanduser().resolve() if kafka_libs else self.data_dir / "kafka" / "libs"
        self.postgres = Postgres(self.data_dir / "postgres", postgres_port, say)
        self._brokers: dict[Which, _Broker] = {
            "mqtt": _Mosquitto(self.data_dir / "mosquitto", mqtt_port, say),
            "kafka": _Kafka(self.data_dir / "kafka", kafka_port, self.kafka_controller_port, libs, say),
            "postgres": self.postgres,
        }

    @classmethod
    def on_free_ports(cls, data_dir: Path | str, *, kafka_libs: Path | str | None = None,
                      say: Callable[[str], None] = lambda _msg: None) -> BrokerSet:
        """Brokers of ``data_dir`` on free loopback ports, beside any already running (tests, benchmarks)."""
        mqtt_port, kafka_port, controller_port, postgres_port = free_ports(4)
        return cls(data_dir, mqtt_port, kafka_port, kafka_controller_port=controller_port, kafka_libs=kafka_libs,
                   postgres_port=postgres_port, say=say)

    # Addresses for clients
    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{HOST}:{self.mqtt_port}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def kafka_url(self) -> str:
        return f"kafka://{HOST}:{self.kafka_port}"

    @property
    def postgres_url(self) -> str:
        """``postgresql://ioc:PASSWORD@127.0.0.1:PORT/ioc`` (with the password: never print it)."""
        return self.postgres.url

    def _pick(self, only: Which | None) -> list[_Broker]:
        if only is None:
            return list(self._brokers.values())
        if only not in self._brokers:
            raise BrokerError(f"unknown broker {only!r}; choose one of {', '.join(BROKERS)}")
        return [self._brokers[only]]

    def start(self, only: Which | None = None) -> list[str]:
        """Start (or find running) the brokers; returns one line per broker."""
        lines = []
        for broker in self._pick(only):
            timeout = {"kafka": KAFKA_START_TIMEOUT_S, "postgres": 60.0}.get(broker.which, MQTT_START_TIMEOUT_S)
            lines.append(broker.start(timeout))
        return lines

    def stop(self, only: Which | None = None) -> list[str]:
        """Stop the brokers (PostgreSQL, then Kafka, then Mosquitto); one line per broker."""
        return [broker.stop() for broker in reversed(self._pick(only))]

    def restart(self, which: Which) -> list[str]:
        """Stop then start one broker, keeping its data (fault-injection tests)."""
        return self.stop(which) + self.start(which)

    def status(self, only: Which | None = None) -> list[BrokerStatus]:
        return [broker.status() for broker in self._pick(only)]

    def pids(self) -> dict[Which, int | None]:
        return {which: broker.pid() for which, broker in self._brokers.items()}

    def __enter__(self) -> BrokerSet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def scratch_brokers(say: Callable[[str], None] = lambda _msg: None) -> Iterator[BrokerSet]:
    """Started brokers on free ports with data in a temporary folder, stopped and removed after
    (benchmarks); the Kafka jars come from :func:`shared_kafka_libs`."""
    with tempfile.TemporaryDirectory(prefix="ioc-brokers-") as tmp:
        brokers = BrokerSet.on_free_ports(tmp, kafka_libs=shared_kafka_libs(), say=say)
        try:
            with brokers:
                yield brokers
        finally:
            brokers.postgres.remove()      # as root its cluster lives outside the temporary folder


# --------------------------------------------------------------------------------------
# Command line: ioc brokers start | stop | status | restart
# --------------------------------------------------------------------------------------

def _cmd_brokers(args: argparse.Namespace) -> int:
    from ioc.cli import UserError

    def say(msg: str) -> None:
        print(msg, flush=True)

    brokers = BrokerSet(args.data_dir, args.mqtt_port, args.kafka_port,
                        kafka_controller_port=args.kafka_controller_port, kafka_libs=args.kafka_libs,
                        postgres_port=args.postgres_port, say=say)
    chosen: list[Which] = [args.only] if args.only else list(BROKERS)
    try:
        if args.action == "status":
            for st in brokers.status(args.only):
                print(st.line())
            return 0
        if args.action in ("stop", "restart"):
            for line in brokers.stop(args.only):
                print(line, flush=True)
        if args.action in ("start", "restart"):
            for which in chosen:   # one line as each broker is ready
                for line in brokers.start(which):
                    print(line, flush=True)
    except BrokerError as exc:
        raise UserError(str(exc)) from None
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``ioc brokers start | stop | status | restart`` on the ``ioc`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mqtt-port", type=int, default=1883, help="Mosquitto's port on 127.0.0.1 (default 1883)")
    common.add_argument("--kafka-port", type=int, default=9092, help="Kafka's port on 127.0.0.1 (default 9092)")
    common.add_argument("--kafka-controller-port", type=int, default=None,
                        help="Kafka's KRaft controller port (default: Kafka's port + 1)")
    common.add_argument("--postgres-port", type=int, default=5432,
                        help="PostgreSQL's port on 127.0.0.1 (default 5432)")
    common.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help=f"brokers' data, configs, logs and PID files (default {default_data_dir()})")
    common.add_argument("--kafka-libs", type=Path, default=None,
                        help="folder of the Kafka jars, shareable between data dirs (default DATA_DIR/kafka/libs)")
    common.add_argument("--only", choices=BROKERS, default=None, help="act on one broker only")

    p = subparsers.add_parser("brokers", help="start, stop or show Mosquitto, Kafka and PostgreSQL on loopback",
                              description="Mosquitto (MQTT), a single-node Kafka (KRaft) and PostgreSQL on "
                                          "127.0.0.1, installed if missing, data in a project folder.")
    actions = p.add_subparsers(dest="action", required=True, metavar="{start,stop,status,restart}")
    for name, text in (("start", "install if missing, start, wait until ready, create topics (idempotent)"),
                       ("stop", "stop the brokers started from this data dir"),
                       ("status", "running/stopped, pid, address and data dir of each broker"),
                       ("restart", "stop, then start again (data kept)")):
        a = actions.add_parser(name, parents=[common], help=text, description=text)
        a.set_defaults(func=_cmd_brokers)


def main(argv: list[str] | None = None) -> int:
    """``python -m ioc.brokers ACTION ...``, the same as ``ioc brokers ACTION ...``."""
    parser = argparse.ArgumentParser(prog="ioc")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["brokers", *(sys.argv[1:] if argv is None else argv)])
    from ioc.cli import UserError

    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
