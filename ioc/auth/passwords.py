"""Password hashing with Argon2id (argon2-cffi): hash, verify, and when to re-hash.

Passwords are never stored, printed or logged; only their Argon2id hashes are kept.
A policy of length only (NIST SP 800-63B): at least :data:`MIN_LENGTH` characters.
"""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from processing.errors import ConfigError

__all__ = ["MIN_LENGTH", "check_policy", "hash_password", "needs_rehash", "verify_password"]

MIN_LENGTH = 10
_HASHER = PasswordHasher()          # Argon2id, the library's current recommended parameters
# verified against when the user does not exist, so an unknown name costs as long as a wrong password
_DUMMY = _HASHER.hash("not a password of anyone's")


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise ConfigError(f"the password must have at least {MIN_LENGTH} characters")
    if password != password.strip():
        raise ConfigError("the password must not begin or end with spaces")


def hash_password(password: str) -> str:
    check_policy(password)
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such user; still costs one verification)."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """The hash was made with weaker parameters than today's: re-hash at the next sign-in."""
    return _HASHER.check_needs_rehash(stored)
