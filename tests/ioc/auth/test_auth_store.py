"""Users, sessions and API tokens: hashed, locked after failures, timed out, revocable."""
from __future__ import annotations

from pathlib import Path

import pytest

from ioc.auth.store import AuthStore
from processing.errors import ConfigError, NotSignedIn

PW = "mat-khau-dai-du"
T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's address: a SQLite file in the test's folder, or a fresh schema of the real PostgreSQL
    (the user store the dashboard nodes of a cluster share): the same tests against both."""
    if request.param == "sqlite":
        return str(tmp_path / AuthStore.FILENAME)
    return request.getfixturevalue("pg_schema")


@pytest.fixture
def store(where: str) -> AuthStore:
    s = AuthStore(where, max_failures=3, lock_s=600.0, idle_s=1800.0, max_age_s=12 * 3600.0)
    s.add_user("an", "operator", PW, T0, officer="nguyen_van_an")
    return s


def _stored(where: str) -> bytes:
    """Every byte the store keeps: the SQLite files, or every row of PostgreSQL's tables."""
    if not where.startswith("postgresql://"):
        return b"".join(p.read_bytes() for p in Path(where).parent.glob("auth.sqlite3*"))
    from ioc.pg import connect

    with connect(where) as conn:
        rows = [r for t in ("users", "sessions", "tokens") for r in conn.execute(f"SELECT * FROM {t}").fetchall()]
    return repr(rows).encode()


def test_a_user_signs_in_and_the_store_holds_no_password_and_no_session_id(store: AuthStore, where: str) -> None:
    sid, session = store.sign_in("an", PW, T0, "127.0.0.1")
    assert (session.user.name, session.user.role, session.user.officer) == ("an", "operator", "nguyen_van_an")
    assert store.session(sid, T0 + 60).user.name == "an" and len(session.csrf) >= 40
    raw = _stored(where)
    assert PW.encode() not in raw and sid.encode() not in raw and b"$argon2id$" in raw
    if not where.startswith("postgresql://"):
        assert Path(where).stat().st_mode & 0o077 == 0


def test_unknown_names_and_wrong_passwords_get_the_same_answer(store: AuthStore) -> None:
    for name, pw in (("an", "sai-mat-khau-roi"), ("ghost", PW)):
        with pytest.raises(NotSignedIn, match="^wrong user name or password$"):
            store.sign_in(name, pw, T0)


def test_repeated_failures_lock_the_account_even_for_the_right_password_then_it_opens(store: AuthStore) -> None:
    for k in range(3):
        with pytest.raises(NotSignedIn, match="^wrong user name or password$"):
            store.sign_in("an", f"sai-mat-khau-{k}", T0 + k)
    with pytest.raises(NotSignedIn, match="locked after 3 failures: try again in 10 min"):
        store.sign_in("an", PW, T0 + 3)
    assert store.user("an").locked_until == T0 + 2 + 600.0
    sid, _ = store.sign_in("an", PW, T0 + 2 + 601.0)             # the lock has run out
    assert store.session(sid, T0 + 700).user.name == "an"


def test_a_success_resets_the_failure_count(store: AuthStore) -> None:
    for k in range(2):
        with pytest.raises(NotSignedIn):
            store.sign_in("an", f"sai-mat-khau-{k}", T0)
    store.sign_in("an", PW, T0)
    for k in range(2):
        with pytest.raises(NotSignedIn, match="^wrong user name or password$"):
            store.sign_in("an", f"sai-mat-khau-{k}", T0)
    store.sign_in("an", PW, T0)                                  # 2 + 2 failures, never 3 in a row


def test_sessions_end_when_idle_too_long_at_their_maximum_age_and_at_sign_out(store: AuthStore) -> None:
    sid, _ = store.sign_in("an", PW, T0)
    store.session(sid, T0 + 1700)                                # each request restarts the idle time
    store.session(sid, T0 + 3400)
    with pytest.raises(NotSignedIn, match="the session has ended"):
        store.session(sid, T0 + 3400 + 1801)
    with pytest.raises(NotSignedIn, match="^not signed in$"):
        store.session(sid, T0 + 3400 + 1802)                     # and it is gone
    sid, _ = store.sign_in("an", PW, T0)
    t = T0
    while t < T0 + 12 * 3600 - 1200:
        t += 1200
        store.session(sid, t)
    with pytest.raises(NotSignedIn, match="the session has ended"):
        store.session(sid, T0 + 12 * 3600 + 1)
    sid, _ = store.sign_in("an", PW, T0)
    store.sign_out(sid)
    with pytest.raises(NotSignedIn):
        store.session(sid, T0 + 1)
    for nothing in (None, "", "forged"):
        with pytest.raises(NotSignedIn, match="^not signed in$"):
            store.session(nothing, T0)


def test_csrf_token_must_match_its_session(store: AuthStore) -> None:
    _, one = store.sign_in("an", PW, T0)
    _, two = store.sign_in("an", PW, T0)
    assert AuthStore.csrf_ok(one, one.csrf) and not AuthStore.csrf_ok(one, two.csrf)
    assert not AuthStore.csrf_ok(one, None) and not AuthStore.csrf_ok(one, "")


def test_disabling_or_a_new_password_signs_the_user_out_everywhere(store: AuthStore) -> None:
    sid, _ = store.sign_in("an", PW, T0)
    store.set_password("an", "mot-mat-khau-moi")
    with pytest.raises(NotSignedIn):
        store.session(sid, T0 + 1)
    with pytest.raises(NotSignedIn):
        store.sign_in("an", PW, T0 + 2)
    sid, _ = store.sign_in("an", "mot-mat-khau-moi", T0 + 3)
    store.set_disabled("an", True)
    with pytest.raises(NotSignedIn):
        store.session(sid, T0 + 4)
    with pytest.raises(NotSignedIn, match="the account 'an' is disabled"):
        store.sign_in("an", "mot-mat-khau-moi", T0 + 5)
    store.set_disabled("an", False)
    store.sign_in("an", "mot-mat-khau-moi", T0 + 6)


def test_users_are_validated_and_unique(store: AuthStore) -> None:
    with pytest.raises(ConfigError, match="user 'an' exists already"):
        store.add_user("an", "viewer", PW, T0)
    with pytest.raises(ConfigError, match="at least 10 characters"):
        store.add_user("binh", "viewer", "short", T0)
    with pytest.raises(ConfigError, match="role must be one of"):
        store.add_user("binh", "boss", PW, T0)
    with pytest.raises(ConfigError, match="use 2-64 lowercase"):
        store.add_user("<img src=x>", "viewer", PW, T0)
    store.add_user("binh", "duty-officer", PW, T0, teams=("giao_thong",))
    assert [(u.name, u.role, u.teams) for u in store.users()] == [("an", "operator", ()),
                                                                   ("binh", "duty", ("giao_thong",))]
    assert store.user("binh").principal.teams == ("giao_thong",)
    with pytest.raises(ConfigError, match="no user 'ghost'"):
        store.set_password("ghost", PW)


def test_tokens_are_shown_once_stored_hashed_scoped_and_revocable(store: AuthStore, where: str) -> None:
    secret, tok = store.add_token("webhook-back", "write", T0)
    assert secret.startswith(f"ioc_{tok.id}_") and tok.scope == "write"
    assert store.token(secret).principal.role == "operator"
    assert secret.split("_", 2)[2].encode() not in _stored(where)
    for forged in (None, "", "Bearer x", f"ioc_{tok.id}_wrong", "ioc_nope_x", secret + "x"):
        with pytest.raises(NotSignedIn, match="no valid API token"):
            store.token(forged)
    store.revoke_token(tok.id, T0 + 1)
    with pytest.raises(NotSignedIn, match="'webhook-back' was revoked"):
        store.token(secret)
    with pytest.raises(ConfigError, match=f"no live token '{tok.id}'"):
        store.revoke_token(tok.id, T0 + 2)
    assert [t.revoked_at for t in store.tokens()] == [T0 + 1]
    with pytest.raises(ConfigError, match="scope must be one of read, write"):
        store.add_token("x1", "admin", T0)


def test_the_store_survives_a_restart(store: AuthStore, where: str) -> None:
    sid, _ = store.sign_in("an", PW, T0)
    secret, _ = store.add_token("wall", "read", T0)
    store.close()
    again = AuthStore(where)
    assert again.session(sid, T0 + 10).user.name == "an" and again.token(secret).scope == "read"


def test_the_first_start_makes_one_admin_with_a_random_password_and_never_again(tmp_path: Path) -> None:
    fresh = AuthStore.in_folder(tmp_path / "fresh")
    password = fresh.first_admin(T0)
    assert password is not None and len(password) >= 16
    assert [(u.name, u.role) for u in fresh.users()] == [("admin", "admin")]
    assert fresh.sign_in("admin", password, T0)[1].user.role == "admin"
    assert fresh.first_admin(T0 + 1) is None                       # users exist: nothing made, nothing shown
    other = AuthStore.in_folder(tmp_path / "other").first_admin(T0)
    assert other != password                                       # never a fixed default


def test_a_store_with_users_gets_no_first_admin(store: AuthStore) -> None:
    assert store.first_admin(T0) is None and [u.name for u in store.users()] == ["an"]


@pytest.mark.integration
def test_two_nodes_sharing_a_store_see_one_session_and_make_one_first_admin(pg_schema: str) -> None:
    """Dashboards behind a load balancer: signed in on one node, known on the other; started together,
    they make one first admin between them."""
    a, b = AuthStore(pg_schema), AuthStore(pg_schema)
    try:
        shown = [a.first_admin(T0), b.first_admin(T0)]
        assert sum(p is not None for p in shown) == 1 and [u.name for u in b.users()] == ["admin"]
        password = next(p for p in shown if p)
        sid, _ = a.sign_in("admin", password, T0)
        assert b.session(sid, T0 + 5).user.role == "admin"
        b.sign_out(sid)
        with pytest.raises(NotSignedIn):
            a.session(sid, T0 + 6)
    finally:
        a.close()
        b.close()
