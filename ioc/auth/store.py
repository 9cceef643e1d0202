"""Users, sessions and API tokens in the data folder (``<data>/auth.sqlite3``), or in PostgreSQL
(``AuthStore("postgresql://…")``: the dashboard nodes of a cluster share their users and sessions,
so any node behind a load balancer serves a signed-in operator).

* **Users**: a name, a role (:mod:`processing.access`), their teams, the roster officer
  they are (``officer``: alerts assigned to that officer are theirs), an Argon2id hash.
  :meth:`AuthStore.sign_in` answers one message for an unknown name and a wrong password
  (no probing for names) and locks the account for ``lock_s`` after ``max_failures``
  failures in a row.
* **Sessions**: a random id (the cookie) and a CSRF token; only the id's SHA-256 is
  stored, so a copy of the file does not sign anyone in.  A session ends at log-out,
  after ``idle_s`` without a request, or ``max_age_s`` after sign-in.
* **Tokens** for machines: ``ioc_<id>_<secret>``, shown once at creation; stored as
  SHA-256, scoped ``read`` or ``write``, revocable.

Every clock is passed in (``now``), so tests drive time.  Thread-safe (one lock).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ioc.auth.passwords import hash_password, needs_rehash, verify_password
from ioc.pg import integrity_errors
from processing.access import SCOPES, Principal, parse_role, valid_name
from processing.errors import ConfigError, NotSignedIn, StateError

__all__ = ["AuthStore", "Session", "Token", "User"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, teams TEXT NOT NULL, officer TEXT NOT NULL,
    hash TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, source TEXT NOT NULL,
    created_at REAL NOT NULL, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, secret_hash TEXT NOT NULL,
    created_at REAL NOT NULL, revoked_at REAL);
"""
_WRONG = "wrong user name or password"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    teams: tuple[str, ...]
    officer: str
    disabled: bool
    locked_until: float
    created_at: float

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.teams)


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    source: str
    created_at: float
    seen_at: float


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    name: str
    scope: str
    created_at: float
    revoked_at: float | None

    @property
    def principal(self) -> Principal:
        return Principal.for_token(self.name, self.scope)


class AuthStore:
    """The sign-in state of one IOC (see the module docstring)."""

    FILENAME = "auth.sqlite3"

    def __init__(self, path: str | Path, *, max_failures: int = 5, lock_s: float = 900.0,
                 idle_s: float = 1800.0, max_age_s: float = 12 * 3600.0) -> None:
        from ioc.pg import is_postgres

        self.max_failures, self.lock_s, self.idle_s, self.max_age_s = max_failures, lock_s, idle_s, max_age_s
        self._lock = threading.Lock()
        if is_postgres(path):
            from ingest.sources import redact
            from ioc.pg import PgError, SqliteLike, pg_types

            self.path = Path(redact(str(path)))
            try:
                self._db = SqliteLike(str(path), "auth_store", (pg_types(_SCHEMA),))   # type: ignore[assignment]
            except PgError as exc:
                raise StateError(f"cannot open the user store: {exc}") from None
            return
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"{self.path}: cannot open the user store: {exc}") from exc
        self.path.chmod(0o600)                      # hashes only, but nobody else's business

    @classmethod
    def in_folder(cls, data_dir: str | Path, **kw: float) -> "AuthStore":
        return cls(Path(data_dir) / cls.FILENAME, **kw)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "AuthStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- users
    def add_user(self, name: str, role: str, password: str, now: float, *, teams: tuple[str, ...] = (),
                 officer: str = "") -> User:
        name, role = valid_name(name), parse_role(role)
        digest = hash_password(password)
        with self._lock:
            try:
                self._db.execute("INSERT INTO users (name, role, teams, officer, hash, created_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (name, role, json.dumps(list(teams)), officer,
                                                               digest, now))
            except integrity_errors():
                raise ConfigError(f"user {name!r} exists already") from None
        return self.user(name)

    def first_admin(self, now: float, name: str = "admin") -> str | None:
        """With no user at all, add admin ``name`` with a random password and return it (to be
        shown once); None when users exist.  The one-command start needs no set-up and has no
        default password."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None:
                return None
        password = secrets.token_urlsafe(12)
        try:
            self.add_user(name, "admin", password, now)
        except ConfigError:            # another node sharing this store made it first
            return None
        return password

    def set_password(self, name: str, password: str) -> None:
        digest = hash_password(password)
        with self._lock:
            cur = self._db.execute("UPDATE users SET hash = ?, failures = 0, locked_until = 0 WHERE name = ?",
                                   (digest, name))
            self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))   # signed out everywhere
        if cur.rowcount == 0:
            raise ConfigError(f"no user {name!r}")

    def set_disabled(self, name: str, disabled: bool) -> None:
        with self._lock:
            cur = self._db.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
            if disabled:
                self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))
        if cur.rowcount == 0:
            raise ConfigError(f"no user {name!r}")

    def user(self, name: str) -> User:
        with self._lock:
            row = self._db.execute("SELECT name, role, teams, officer, disabled, locked_until, created_at "
                                   "FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ConfigError(f"no user {name!r}")
        return self._user(row)

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role, teams, officer, disabled, locked_until, created_at "
                                    "FROM users ORDER BY name").fetchall()
        return [self._user(r) for r in rows]

    @staticmethod
    def _user(row: tuple) -> User:
        return User(row[0], row[1], tuple(json.loads(row[2])), row[3], bool(row[4]), float(row[5]), float(row[6]))

    # -------------------------------------------------------------- sign-in
    def sign_in(self, name: str, password: str, now: float, source: str = "") -> tuple[str, Session]:
        """A new session for a right name and password: ``(session id for the cookie, session)``.

        :class:`NotSignedIn` otherwise -- the same message for an unknown name and a wrong
        password; a locked or disabled account says so only once the password was right."""
        with self._lock:
            row = self._db.execute("SELECT hash, failures, locked_until, disabled FROM users WHERE name = ?",
                                   (name,)).fetchone()
        ok = verify_password(row[0] if row else None, password)
        if row is None:
            raise NotSignedIn(_WRONG)
        _, failures, locked_until, disabled = row
        if locked_until > now:
            raise NotSignedIn(f"{_WRONG}, or the account is locked after {self.max_failures} failures: "
                              f"try again in {int((locked_until - now) // 60) + 1} min")
        if not ok:
            failures += 1
            lock = now + self.lock_s if failures >= self.max_failures else 0.0
            with self._lock:
                self._db.execute("UPDATE users SET failures = ?, locked_until = ? WHERE name = ?",
                                 (0 if lock else failures, lock, name))
            raise NotSignedIn(_WRONG)
        if disabled:
            raise NotSignedIn(f"the account {name!r} is disabled")
        if needs_rehash(row[0]):
            self.set_password(name, password)
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute("UPDATE users SET failures = 0, locked_until = 0 WHERE name = ?", (name,))
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", (_digest(sid), name, csrf,
                                                                               source, now, now))
        return sid, Session(self.user(name), csrf, source, now, now)

    def session(self, sid: str | None, now: float) -> Session:
        """The live session of cookie value ``sid`` (its idle time restarts), or :class:`NotSignedIn`."""
        if not sid:
            raise NotSignedIn("not signed in")
        key = _digest(sid)
        with self._lock:
            row = self._db.execute("SELECT name, csrf, source, created_at, seen_at FROM sessions WHERE id_hash = ?",
                                   (key,)).fetchone()
            if row is not None and (now - row[4] > self.idle_s or now - row[3] > self.max_age_s):
                self._db.execute("DELETE FROM sessions WHERE id_hash = ?", (key,))
                raise NotSignedIn("the session has ended: sign in again")
            if row is not None:
                self._db.execute("UPDATE sessions SET seen_at = ? WHERE id_hash = ?", (now, key))
        if row is None:
            raise NotSignedIn("not signed in")
        user = self.user(row[0])
        if user.disabled:
            raise NotSignedIn(f"the account {user.name!r} is disabled")
        return Session(user, row[1], row[2], row[3], now)

    def sign_out(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._db.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(sid),))

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        """Whether a state-changing request carries its session's CSRF token."""
        return bool(token) and hmac.compare_digest(session.csrf, str(token))

    # --------------------------------------------------------------- tokens
    def add_token(self, name: str, scope: str, now: float) -> tuple[str, Token]:
        """A new API token: ``(the secret, shown this once, the token)``."""
        name = valid_name(name)
        if scope not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        tid, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)", (tid, name, scope, _digest(secret), now))
        return f"ioc_{tid}_{secret}", Token(tid, name, scope, now, None)

    def token(self, bearer: str | None) -> Token:
        """The live token of an ``Authorization: Bearer`` value, or :class:`NotSignedIn`."""
        parts = str(bearer or "").split("_", 2)
        if len(parts) != 3 or parts[0] != "ioc":
            raise NotSignedIn("no valid API token")
        with self._lock:
            row = self._db.execute("SELECT id, name, scope, secret_hash, created_at, revoked_at FROM tokens "
                                   "WHERE id = ?", (parts[1],)).fetchone()
        if row is None or not hmac.compare_digest(row[3], _digest(parts[2])):
            raise NotSignedIn("no valid API token")
        if row[5] is not None:
            raise NotSignedIn(f"the API token {row[1]!r} was revoked")
        return Token(row[0], row[1], row[2], row[4], None)

    def tokens(self) -> list[Token]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, scope, created_at, revoked_at FROM tokens "
                                    "ORDER BY created_at").fetchall()
        return [Token(*r) for r in rows]

    def revoke_token(self, tid: str, now: float) -> None:
        with self._lock:
            cur = self._db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, tid))
        if cur.rowcount == 0:
            raise ConfigError(f"no live token {tid!r}")
