"""``ioc users`` and ``ioc tokens``: passwords from stdin or a no-echo prompt, never printed."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from ioc.auth.cli import read_password
from ioc.auth.store import AuthStore
from ioc.cli import main
from processing.errors import ConfigError

PW = "mat-khau-dai-du"


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, argv: list[str],
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_add_list_passwd_disable_with_the_password_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    data = ["--data", str(tmp_path)]
    rc, out, err = run(monkeypatch, capsys, ["users", "add", "an", "--role", "duty-officer", "--team", "giao_thong",
                                             "--officer", "nguyen_van_an", *data], PW + "\n")
    assert rc == 0 and out == "user an added: duty, teams giao_thong, officer nguyen_van_an\n" and err == ""
    rc, out, _ = run(monkeypatch, capsys, ["users", "list", *data])
    assert rc == 0 and out.splitlines()[1].split() == ["an", "duty", "nguyen_van_an", "giao_thong", "active"]
    rc, out, err = run(monkeypatch, capsys, ["users", "passwd", "an", *data], "mot-mat-khau-moi\n")
    assert rc == 0 and "mot-mat-khau-moi" not in out + err
    store = AuthStore.in_folder(tmp_path)
    store.sign_in("an", "mot-mat-khau-moi", 0.0)
    rc, out, _ = run(monkeypatch, capsys, ["users", "disable", "an", *data])
    assert rc == 0 and store.user("an").disabled
    rc, out, err = run(monkeypatch, capsys, ["users", "add", "an", "--role", "viewer", *data], PW + "\n")
    assert (rc, err) == (2, "error: user 'an' exists already\n") and PW not in out + err


def test_bad_input_is_one_line_naming_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    data = ["--data", str(tmp_path)]
    for argv, stdin, want in (
            (["users", "add", "bb", "--role", "boss"], PW + "\n", "error: role must be one of viewer, operator, "
                                                                  "duty, admin, got 'boss'\n"),
            (["users", "add", "bb", "--role", "viewer"], "", "error: no password on standard input "
                                                             "(one line expected)\n"),
            (["users", "add", "bb", "--role", "viewer", "--team", "cuu_hoa"], PW + "\n",
             "error: --team 'cuu_hoa': not a team of alerting.toml (dieu_hanh_ioc, giao_thong, ha_tang, moi_truong)\n"),
            (["tokens", "revoke", "nope"], "", "error: no live token 'nope'\n")):
        rc, out, err = run(monkeypatch, capsys, [*argv, *data], stdin)
        assert (rc, out, err) == (2, "", want)


def test_a_token_is_printed_once_and_then_only_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    data = ["--data", str(tmp_path)]
    rc, out, err = run(monkeypatch, capsys, ["tokens", "add", "script", "--scope", "write", *data])
    secret = out.strip()
    assert rc == 0 and AuthStore.in_folder(tmp_path).token(secret).scope == "write" and "shown this once" in err
    rc, out, _ = run(monkeypatch, capsys, ["tokens", "list", *data])
    tid = secret.split("_")[1]
    assert rc == 0 and secret not in out and out.splitlines()[1].split()[:3] == [tid, "script", "write"]
    run(monkeypatch, capsys, ["tokens", "revoke", tid, *data])
    rc, out, _ = run(monkeypatch, capsys, ["tokens", "list", *data])
    assert out.splitlines()[1].split()[-1] == "revoked"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_the_password_is_typed_twice_without_echo() -> None:
    typed = iter([PW, PW])
    assert read_password(Tty(), lambda prompt: next(typed)) == PW
    typed = iter([PW, PW + "x"])
    with pytest.raises(ConfigError, match="the two passwords differ"):
        read_password(Tty(), lambda prompt: next(typed))
