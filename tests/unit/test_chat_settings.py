"""The chat and reaction settings: defaults, environment, and refused values."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.settings import SettingsError, load_settings


def test_defaults_and_environment(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={})
    assert (s.chat_max_chars, s.chat_history) == (500, 100)
    assert (s.chat_messages_per_second, s.chat_messages_burst) == (0.5, 5)
    assert (s.reactions_per_second, s.reactions_burst) == (3.0, 10)
    assert (s.reactions_interval_seconds, s.reactions_batch_users) == (0.25, 200)
    s = load_settings(
        tmp_path, environ={"SALON_CHAT_MAX_CHARS": "280", "SALON_REACTIONS_INTERVAL_SECONDS": "1"}
    )
    assert s.chat_max_chars == 280 and s.reactions_interval_seconds == 1.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("chat_max_chars", 0, "setting 'chat_max_chars' must be 1-4096"),
        ("chat_max_chars", 5000, "setting 'chat_max_chars' must be 1-4096"),
        ("chat_history", 0, "setting 'chat_history' must be at least 1"),
        ("chat_messages_burst", 0, "setting 'chat_messages_burst' must be at least 1"),
        ("reactions_batch_users", 0, "setting 'reactions_batch_users' must be at least 1"),
        ("chat_messages_per_second", 0, "setting 'chat_messages_per_second' must be positive"),
        ("reactions_per_second", -1, "setting 'reactions_per_second' must be positive"),
        ("reactions_interval_seconds", 0, "setting 'reactions_interval_seconds' must be positive"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, name: str, value: object, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(tmp_path, {name: value}, environ={})
    assert str(err.value) == message
