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
    assert settings.speaker_passthrough_max_bitrate == 48000
    env = {"SALON_SPEAKER_PASSTHROUGH": "false", "SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "40000"}
    settings = load_settings(tmp_path, environ=env)
    assert settings.speaker_passthrough is False
    assert settings.speaker_passthrough_max_bitrate == 40000


@pytest.mark.parametrize("value", ["0", "5999", "510001", "-1"])
def test_a_bound_outside_what_opus_can_send_is_refused(tmp_path: Path, value: str) -> None:
    env = {"SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": value}
    with pytest.raises(SettingsError, match="speaker_passthrough_max_bitrate"):
        load_settings(tmp_path, environ=env)


def test_a_bound_below_the_rooms_own_bitrate_is_refused(tmp_path: Path) -> None:
    # a speaker passes through only when their stream costs a listener about what the
    # room's own encoding would: never a bound under audio_bitrate
    env = {"SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "24000"}
    message = "setting 'speaker_passthrough_max_bitrate' must be at least 'audio_bitrate' (32000)"
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path, environ=env)
    assert str(refused.value) == message
    env = {"SALON_AUDIO_BITRATE": "64000"}  # a richer room needs a higher bound too
    with pytest.raises(SettingsError, match="at least 'audio_bitrate' \\(64000\\)"):
        load_settings(tmp_path, environ=env)
    env = {"SALON_AUDIO_BITRATE": "64000", "SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "96000"}
    assert load_settings(tmp_path, environ=env).speaker_passthrough_max_bitrate == 96000
    # with pass-through off the bound is unused and not checked against the room
    env = {"SALON_AUDIO_BITRATE": "64000", "SALON_SPEAKER_PASSTHROUGH": "false"}
    assert load_settings(tmp_path, environ=env).audio_bitrate == 64000
