"""The node's DTLS retransmission timer (media/dtls_timer.py): 100 ms first, not 1 s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiortc.rtcdtlstransport import SRTP_AES128_CM_SHA1_80, RTCCertificate, RTCDtlsTransport
from media_harness import Harness, write_tone
from OpenSSL import SSL

from media import dtls, dtls_timer

pytestmark = pytest.mark.timeout(30)


def test_the_timer_starts_at_100_ms_and_doubles_up_to_60_s() -> None:
    assert dtls_timer.next_timeout(0) == 100_000
    steps = [0]
    for _ in range(12):
        steps.append(dtls_timer.next_timeout(steps[-1]))
    assert steps[1:6] == [100_000, 200_000, 400_000, 800_000, 1_600_000]
    assert steps[-1] == 60_000_000  # capped, never wraps an unsigned int


def test_the_symbol_table_gives_the_exported_functions_real_address() -> None:
    """The one fact the hook rests on: symbol-table value + load base = the address the
    loader resolved, checked on an exported function of the same file."""
    import ctypes

    import cryptography.hazmat.bindings._rust as rust

    path = Path(rust.__file__ or "")
    found = dtls_timer.elf_functions(path, ("PyInit__rust", "DTLS_set_timer_cb", "no_such_fn"))
    assert set(found) == {"PyInit__rust", "DTLS_set_timer_cb"}
    loaded = ctypes.cast(ctypes.CDLL(str(path)).PyInit__rust, ctypes.c_void_p).value
    assert loaded is not None
    base = loaded - found["PyInit__rust"]
    assert base % 4096 == 0  # a load base is page-aligned: the values are load-relative
    with pytest.raises(ValueError, match="not a 64-bit"):
        dtls_timer.elf_functions(Path(__file__), ("x",))


def _client() -> SSL.Connection:
    context = RTCCertificate.generateCertificate()._create_ssl_context([SRTP_AES128_CM_SHA1_80])
    connection = SSL.Connection(context)
    connection.set_connect_state()
    return connection


def _first_flight(connection: SSL.Connection) -> float:
    with pytest.raises(SSL.WantReadError):
        connection.do_handshake()
    timeout = connection.DTLSv1_get_timeout()
    assert timeout is not None
    return float(timeout)


def test_a_shortened_connection_resends_after_100_ms_and_then_200() -> None:
    assert dtls_timer.available() == "", dtls_timer.available()
    plain = _client()
    assert _first_flight(plain) > 0.9  # OpenSSL's own: 1 s
    short = _client()
    assert dtls_timer.shorten(short)
    assert 0.05 < _first_flight(short) <= 0.1
    first = short.bio_read(1500)  # the ClientHello
    time.sleep(0.11)
    short.DTLSv1_handle_timeout()  # expired: OpenSSL sends the flight again ...
    assert short.bio_read(1500)[13:] == first[13:]  # (same message, next record number)
    timeout = short.DTLSv1_get_timeout()
    assert timeout is not None and 0.15 < timeout <= 0.2  # ... and doubles the timer


async def test_a_lost_last_flight_costs_the_speaker_a_tenth_of_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node is the DTLS client; the bot (server) sends its ChangeCipherSpec + Finished
    and starts speaking. That datagram is lost: the node sends its flight again at its
    timer, the bot answers again, and the node's handshake completes. Both sides' states
    are read, not timed: the node's timer was 100 ms when the flight went missing."""
    dropped: list[bytes] = []
    seen_timeouts: list[float] = []
    write = RTCDtlsTransport._write_ssl

    async def lossy_write(self: RTCDtlsTransport) -> None:
        if isinstance(self, dtls.NodeDtlsTransport):
            if self._ssl is not None and self._ssl is not dtls.RELEASED and not self.encrypted:
                timeout = self._ssl.DTLSv1_get_timeout()
                if timeout is not None:
                    seen_timeouts.append(float(timeout))
            await write(self)
            return
        if self._role == "server" and not dropped and self._ssl is not None:
            try:
                data = self._ssl.bio_read(1500)
            except SSL.Error:
                data = b""
            if data[:1] == b"\x14":  # a ChangeCipherSpec record first: the last flight
                dropped.append(data)
                return
            if data:
                await self.transport._send(data)
            return
        await write(self)

    monkeypatch.setattr(RTCDtlsTransport, "_write_ssl", lossy_write)
    h = Harness()
    try:
        bot = await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        assert dropped, "the bot's last flight was never seen"
        session = h.room.session("alice")
        assert session is not None and session.transceiver is not None
        node_transport = session.transceiver.sender.transport
        for _ in range(100):
            if node_transport.state == "connected":
                break
            await asyncio.sleep(0.05)
        assert node_transport.state == "connected"
        assert bot.pc.connectionState == "connected"
        # every wait of the node's handshake was on the short timer
        assert seen_timeouts and max(seen_timeouts) <= 0.2, seen_timeouts
    finally:
        await h.close()
