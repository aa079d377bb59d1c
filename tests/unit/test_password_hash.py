"""The product hashes passwords with argon2id at libsodium's interactive limits; the
suite's quicker hashes (tests/support/passwords.py) check through the same code."""

from __future__ import annotations

import pytest

import node.auth
from tests.support.passwords import PRODUCT_HASH, quick_hash

pytestmark = pytest.mark.timeout(10)


def test_the_product_hashes_with_argon2id_at_interactive_limits() -> None:
    hashed = PRODUCT_HASH("pässwörd 123")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=2,p=1$"), hashed
    assert node.auth.verify_password_sync(hashed, "pässwörd 123")
    assert not node.auth.verify_password_sync(hashed, "passwörd 123")


def test_the_suites_hashes_are_argon2id_and_check_through_the_product() -> None:
    assert node.auth.hash_password_sync is quick_hash  # tests/conftest.py
    hashed = quick_hash("password123")
    assert hashed.startswith("$argon2id$v=19$"), hashed
    assert node.auth.verify_password_sync(hashed, "password123")
    assert not node.auth.verify_password_sync(hashed, "password124")
    assert not node.auth.verify_password_sync(hashed[:-2], "password123")
