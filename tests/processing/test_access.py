"""The access rule: roles in rank order, team-bound duty actions, token scopes, names and role spellings."""
from __future__ import annotations

import pytest

from processing.access import ACTIONS, ROLES, Principal, allowed, check, parse_role, valid_name
from processing.errors import AccessError, ConfigError

# who may do what (the table the issue asks for), action by action, role by role
EXPECTED = {
    "view": {"viewer", "operator", "duty", "admin"},
    "acknowledge": {"operator", "duty", "admin"}, "assign": {"operator", "duty", "admin"},
    "comment": {"operator", "duty", "admin"},
    "resolve": {"duty", "admin"}, "silence": {"duty", "admin"}, "maintenance": {"duty", "admin"},
    "audit": {"admin"}, "users": {"admin"}, "configure": {"admin"},
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_exactly_its_actions(role: str, action: str) -> None:
    who = Principal("x", role)
    assert allowed(who, action) is (role in EXPECTED[action])
    if role in EXPECTED[action]:
        check(who, action)
    else:
        with pytest.raises(AccessError, match=f"^{role} 'x' may not "):
            check(who, action)


def test_a_duty_officer_resolves_only_their_teams_alerts_unless_they_have_none() -> None:
    duty = Principal("binh", "duty", ("giao_thong",))
    assert allowed(duty, "resolve", "giao_thong") and not allowed(duty, "resolve", "ha_tang")
    with pytest.raises(AccessError, match="^duty 'binh' may not resolve alerts of team ha_tang$"):
        check(duty, "resolve", "ha_tang")
    assert allowed(duty, "acknowledge", "ha_tang")                 # an operator's action: any team
    assert allowed(Principal("lan", "duty"), "silence", "ha_tang")  # no teams listed: every team
    assert allowed(Principal("root", "admin", ("giao_thong",)), "resolve", "ha_tang")


def test_tokens_act_as_their_scope_and_unknown_roles_or_actions_are_refused() -> None:
    read, write = Principal.for_token("wall", "read"), Principal.for_token("script", "write")
    assert (read.role, read.kind, write.role) == ("viewer", "token", "operator")
    assert not allowed(read, "acknowledge") and allowed(write, "acknowledge") and not allowed(write, "resolve")
    with pytest.raises(ConfigError, match="scope must be one of read, write"):
        Principal.for_token("x", "admin")
    assert not allowed(Principal("x", "superuser"), "view")
    with pytest.raises(ValueError, match="unknown action 'delete'"):
        check(Principal("x", "admin"), "delete")


@pytest.mark.parametrize("text, role", [("viewer", "viewer"), ("Operator", "operator"), ("duty-officer", "duty"),
                                        ("duty_officer", "duty"), (" admin ", "admin")])
def test_role_spellings(text: str, role: str) -> None:
    assert parse_role(text) == role


def test_bad_roles_and_names_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="role must be one of viewer, operator, duty, admin, got 'boss'"):
        parse_role("boss")
    assert valid_name("nguyen_van_an") == "nguyen_van_an"
    for bad in ("a", "An", "-x", "x y", "<script>", "x" * 65):
        with pytest.raises(ConfigError, match="use 2-64 lowercase letters"):
            valid_name(bad)
