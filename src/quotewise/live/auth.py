"""Who may do what on the engine's API: API keys with a role each, checked on every route.

Roles, each allowed what the one before is: ``viewer`` reads (makers, status, fills, audit, metrics);
``trader`` also starts makers and stops, configures, halts and resumes the makers it started;
``admin`` may do all of it to every maker and stop the engine. A key is shown once when it is made
and stored only as its SHA-256 (a key is 256 random bits: a plain hash is enough to make a stolen
database useless). The engine's own token (the CLI's, in the user config) is an admin key of the
machine's user, who names the actor of each request (``X-Actor``); a key's requests are always
recorded under the key's name."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quotewise.errors import ConfigError

if TYPE_CHECKING:
    from quotewise.live.store import Store

ROLES = ("viewer", "trader", "admin")
KEY_PREFIX = "qwk_"
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


@dataclass(frozen=True)
class Principal:
    """The caller of a request: the key's name (the audit's actor) and its role."""

    name: str
    role: str

    def can(self, role: str) -> bool:
        """Whether this caller has ``role`` or a greater one."""
        return ROLES.index(self.role) >= ROLES.index(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not name or len(name) > 32 or not set(name) <= NAME_CHARS:
        raise ConfigError(f"a key's name is 1 to 32 letters, digits or . _ - @, got {name!r}")
    return name


def new_key() -> str:
    """A fresh API key: 256 random bits, with a prefix that tells what it is when it leaks."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Keys:
    """Who a key is: the engine's own token (an admin, named by the request) or a stored key."""

    def __init__(self, store: Store, token: str) -> None:
        self.store = store
        self.token = token

    def principal(self, key: str, actor: str = "cli") -> Principal | None:
        """The caller behind ``key``; None for an unknown or revoked key."""
        if not key:
            return None
        if secrets.compare_digest(key, self.token):
            return Principal(actor[:32] or "cli", "admin")
        found = self.store.api_key_role(key_hash(key))
        return None if found is None else Principal(*found)
