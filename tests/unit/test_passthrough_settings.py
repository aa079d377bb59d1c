"""speaker_passthrough and its bitrate bound: defaults, environment, the operator's errors,
and how they reach the media engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.settings import SettingsError, load_settings

pytestmark = pytest.mark.timeout(10)


def test_defaults_and_environment(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert settings.speaker_passthrough is True
    assert settings.speaker_passthrough_max_bitrate == 96000
    env = {"SALON_SPEAKER_PASSTHROUGH": "false", "SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "40000"}
    settings = load_settings(tmp_path, environ=env)
    assert settings.speaker_passthrough is False
    assert settings.speaker_passthrough_max_bitrate == 40000


@pytest.mark.parametrize("value", ["0", "5999", "510001", "-1"])
def test_a_bound_outside_what_opus_can_send_is_refused(tmp_path: Path, value: str) -> None:
    env = {"SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": value}
    with pytest.raises(SettingsError, match="speaker_passthrough_max_bitrate"):
        load_settings(tmp_path, environ=env)
