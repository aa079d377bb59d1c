"""Password hashes in the suite: argon2id at its minimum limits for in-process nodes.

The suite signs up and signs in well over a thousand accounts; at libsodium's interactive
limits (64 MiB, 2 passes: what ``node.auth`` uses) each hash or check costs about 0.1 s on
this 2-core machine, about two minutes of the whole run. ``tests/conftest.py`` makes the
nodes that run inside pytest hash with the same algorithm at its minimum limits instead;
checking reads the limits from the stored hash (``$argon2id$v=19$m=…,t=…``), so sign-in goes
through the product's own code unchanged. Nodes started as ``salon serve`` processes keep
the real limits. ``PRODUCT_HASH`` is the product's function, which
tests/unit/test_password_hash.py pins.
"""

from __future__ import annotations

import nacl.pwhash

import node.auth

PRODUCT_HASH = node.auth.hash_password_sync


def quick_hash(password: str) -> str:
    return nacl.pwhash.argon2id.str(
        password.encode("utf-8"),
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN,
    ).decode("ascii")
