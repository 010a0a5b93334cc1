"""ZooKeeper's four-letter words (``ruok``, ``srvr``, ``mntr``, ...) over plain TCP.

A four-letter word is a tiny admin protocol: connect to the client port, send four
bytes, read until the server closes.  It answers even when the server is not part of a
quorum, which is what makes it the right probe for "is this server up, and in which
mode?".  The words a server answers must be whitelisted in its config
(``4lw.commands.whitelist``); the course's configs whitelist the ones used here.
"""

from __future__ import annotations

import socket

WORDS = ("ruok", "srvr", "stat", "mntr", "envi", "conf", "cons", "wchs", "wchc", "wchp")

NOT_SERVING = "This ZooKeeper instance is not currently serving requests"


def four_letter_word(host: str, port: int, word: str, timeout: float = 1.0) -> str:
    """Send ``word`` to ``host:port`` and return the reply as text.

    Raises ``ValueError`` for a word the course does not whitelist and ``OSError``
    (``ConnectionRefusedError``, ``socket.timeout``...) when nothing answers in
    ``timeout`` seconds.
    """
    if word not in WORDS:
        raise ValueError(f"unknown four-letter word {word!r}; use one of {', '.join(WORDS)}")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(word.encode("ascii"))
        chunks = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def server_mode(host: str, port: int, timeout: float = 1.0) -> str:
    """The server's role: ``leader``, ``follower``, ``observer``, ``standalone``,
    ``not serving`` (up, but without a quorum) or ``down`` (nothing answers)."""
    try:
        reply = four_letter_word(host, port, "srvr", timeout)
    except OSError:
        return "down"
    if NOT_SERVING in reply:
        return "not serving"
    for line in reply.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return "not serving" if reply else "down"


def parse_mntr(reply: str) -> dict:
    """``mntr`` output as a dict (``zk_server_state``, ``zk_znode_count``...)."""
    stats = {}
    for line in reply.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            stats[key] = int(value) if value.lstrip("-").isdigit() else value
    return stats
