"""A media worker's media settings (audio_bitrate, speaker_passthrough,
speaker_passthrough_max_bitrate, loss_protection, native_fanout, media_tick): from SALON_*
variables, checked as the node checks them;
a node hands its own to its local children (node/workers/local.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.worker import WorkerOptions, WorkerSetupError, media_config, options_from_env
from node.settings import Settings, worker_media_env
from node.workers.local import LocalWorkers

pytestmark = pytest.mark.timeout(5)
SOCKET = Path("/run/salon/bus")


def _options(env: dict[str, str]) -> WorkerOptions:
    return options_from_env("http://n", "", SOCKET, "a", 0, environ=env)


def test_defaults_are_the_nodes_defaults() -> None:
    options = _options({})
    assert (options.bitrate, options.speaker_passthrough, options.passthrough_max_bitrate) == (
        32000, True, 48000,
    )  # fmt: skip
    assert (options.loss_protection, options.native_fanout, options.tick) == (True, True, "thread")


def test_the_variables_reach_the_workers_engine() -> None:
    env = {
        "SALON_AUDIO_BITRATE": "24000",
        "SALON_SPEAKER_PASSTHROUGH": "off",
        "SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "30000",
        "SALON_LOSS_PROTECTION": "false",
        "SALON_NATIVE_FANOUT": "0",
        "SALON_MEDIA_TICK": "loop",
    }
    config = media_config(_options(env))
    assert (config.bitrate, config.speaker_passthrough, config.passthrough_max_bitrate) == (
        24000, False, 30000,
    )  # fmt: skip
    assert (config.loss_protection, config.native_fanout, config.tick) == (False, False, "loop")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SALON_SPEAKER_PASSTHROUGH": "maybe"},
         "setting 'speaker_passthrough': 'maybe' is not a valid bool"),
        ({"SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "9" * 30},
         "setting 'speaker_passthrough_max_bitrate' must be 6000-510000"),
        ({"SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "40000", "SALON_AUDIO_BITRATE": "64000"},
         "setting 'speaker_passthrough_max_bitrate' must be at least 'audio_bitrate' (64000)"),
        ({"SALON_AUDIO_BITRATE": "32000.5"},
         "setting 'audio_bitrate': '32000.5' is not a valid int"),
        ({"SALON_MEDIA_TICK": "thread\u200b"},
         "setting 'media_tick' must be 'thread' or 'loop'"),
        ({"SALON_LOSS_PROTECTION": ""}, "setting 'loss_protection': '' is not a valid bool"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_as_the_node_refuses_them(env: dict[str, str], message: str) -> None:
    with pytest.raises(WorkerSetupError) as caught:
        _options(env)
    assert str(caught.value) == message


def test_a_node_hands_its_settings_to_its_children() -> None:
    settings = Settings(
        data_dir=Path("."), audio_bitrate=40000, speaker_passthrough=False,
        speaker_passthrough_max_bitrate=60000, loss_protection=False, media_tick="loop",
    )  # fmt: skip
    media = worker_media_env(settings)
    assert media == {
        "SALON_AUDIO_BITRATE": "40000",
        "SALON_SPEAKER_PASSTHROUGH": "false",
        "SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE": "60000",
        "SALON_LOSS_PROTECTION": "false",
        "SALON_NATIVE_FANOUT": "true",
        "SALON_MEDIA_TICK": "loop",
    }
    children = LocalWorkers(1, "http://n", "s" * 16, "a", socket_path=SOCKET, media_env=media)
    env = children._env()
    assert {k: env[k] for k in media} == media
    options = options_from_env("http://n", "", SOCKET, "a", 0, environ=env)
    assert (options.bitrate, options.speaker_passthrough) == (40000, False)
    assert (options.loss_protection, options.tick) == (False, "loop")
