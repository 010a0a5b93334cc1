"""Names and paths of the recipes' znodes, validated once, here."""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


def check_name(name, what: str = "name") -> str:
    """A single path component: letters, digits, ``_ . -`` (no ``/``); ``ValueError``
    naming the problem otherwise."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ValueError(f"invalid {what} {name!r}: use 1-200 letters, digits, '_', '.' or '-' "
                         "(no '/', no spaces)")
    return name


def check_timeout(timeout, what: str = "timeout"):
    """``None`` (wait for ever) or a number of seconds >= 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"{what} must be None or a number of seconds >= 0, not {timeout!r}")
    return float(timeout)


def join(*parts: str) -> str:
    return "/" + "/".join(p.strip("/") for p in parts if p.strip("/"))


def sequence_of(node: str) -> int:
    """The 10-digit counter ZooKeeper appends to a sequential node's name."""
    return int(node[-10:])
