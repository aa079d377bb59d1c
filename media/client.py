"""A headless WebRTC participant (aiortc) for tests, demos, load and ``salon bot``.

Independent of how signalling travels: give it ``send`` (an async or sync callable taking
one message dict) and either a ``receive`` coroutine function it polls, or call
:meth:`BotPeer.handle` with each node → client message yourself.
"""

from __future__ import annotations

import asyncio
import fractions
import inspect
import logging
import time
import wave
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcicetransport import parse_stun_turn_uri
from aiortc.rtp import RtpPacket

from media import ice
from media.mixer import FRAME_SAMPLES, SAMPLE_RATE, dbov
from media.signaling import Answer, Offer, Renegotiate, SignalError, parse_node_message

logger = logging.getLogger(__name__)

SendMessage = Callable[[dict], Awaitable[None] | None]
ReceiveMessage = Callable[[], Awaitable[dict]]
HEARD_DBOV = -50.0  # a frame louder than this counts towards seconds_heard


class WavError(ValueError):
    """The WAV file cannot be played (missing, unreadable or not 16-bit PCM)."""


def read_wav(path: Path) -> np.ndarray:
    """Read a 16-bit PCM WAV as mono 48 kHz int16 (linear resampling when needed)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise WavError(f"{path}: only 16-bit PCM WAV is supported")
            rate, channels = wav.getframerate(), wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise WavError(f"{path}: cannot read WAV: {exc}") from exc
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(pcm):
        n = int(len(pcm) * SAMPLE_RATE / rate)
        pcm = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm)
    if not len(pcm):
        raise WavError(f"{path}: WAV has no audio")
    return pcm.astype(np.int16)


class IceConfigError(ValueError):
    """An ICE server configuration (WebRTC's ``RTCConfiguration`` JSON) is malformed."""


def rtc_configuration(data: Mapping[str, Any], relay_only: bool = False) -> RTCConfiguration:
    """aiortc's configuration from the JSON form browsers take (``iceServers`` with
    ``urls``/``username``/``credential``, ``iceTransportPolicy``), e.g. a node's
    ``GET /api/ice-servers``. RELAY_ONLY forces the relay policy.

    aioice uses one STUN and one TURN server (the first it can use); URLs aiortc cannot
    parse (an IPv6 literal, say) are skipped with a warning rather than failing the call.
    """
    raw = data.get("iceServers", [])
    if not isinstance(raw, list):
        raise IceConfigError("iceServers must be a list")
    servers = []
    for entry in raw:
        urls = entry.get("urls") if isinstance(entry, Mapping) else None
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise IceConfigError(f"an ICE server needs 'urls' (a URL or a list): {entry!r}")
        usable = []
        for url in urls:
            try:
                parse_stun_turn_uri(url)
            except ValueError as exc:
                logger.warning("bot: skipping ICE server URL %r: %s", url, exc)
                continue
            usable.append(url)
        if usable:
            servers.append(
                RTCIceServer(
                    urls=usable,
                    username=entry.get("username"),
                    credential=entry.get("credential"),
                )
            )
    policy = data.get("iceTransportPolicy", "all")
    if policy not in ("all", "relay"):
        raise IceConfigError(f"iceTransportPolicy must be 'all' or 'relay', not {policy!r}")
    relay = relay_only or policy == "relay"
    return RTCConfiguration(
        iceServers=servers,
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL,
    )


class LoopTrack(MediaStreamTrack):
    """Plays PCM (looped) or silence in real time, 20 ms per frame."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray | None) -> None:
        super().__init__()
        self._pcm = pcm
        self._pos = 0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        if self._pcm is None:
            chunk = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        else:
            idx = (self._pos + np.arange(FRAME_SAMPLES)) % len(self._pcm)
            chunk = self._pcm[idx]
            self._pos = (self._pos + FRAME_SAMPLES) % len(self._pcm)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        return frame


class BotPeer:
    def __init__(
        self,
        send: SendMessage,
        receive: ReceiveMessage | None = None,
        *,
        play: Path | None = None,
        record: Path | None = None,
        speak: bool | None = None,
        ice_addresses: tuple[str, ...] = (),
        stun_servers: tuple[str, ...] = (),
        keep_audio: bool = True,
        configuration: RTCConfiguration | None = None,
    ) -> None:
        """``speak`` (default: True when ``play`` is given) makes offers ``sendrecv``.

        ``configuration`` (ICE servers and policy, see :func:`rtc_configuration`) replaces
        the plain ``stun_servers`` list."""
        self._send = send
        self._receive = receive
        self._pcm = read_wav(play) if play is not None else None
        self._speak = speak if speak is not None else play is not None
        self._record_path = record
        self._ice_addresses = ice_addresses
        if configuration is None:
            servers = [RTCIceServer(urls=url) for url in stun_servers]
            configuration = RTCConfiguration(iceServers=servers)
        self.pc = RTCPeerConnection(configuration)
        self._track = LoopTrack(self._pcm)
        self._transceiver: RTCRtpTransceiver | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._keep_audio = keep_audio
        self._wav: wave.Wave_write | None = None
        self.chunks: list[tuple[float, np.ndarray]] = []  # (arrival monotonic time, pcm)
        self.packets_received = 0
        self.frames_heard = 0
        self.answers = 0
        self.errors: list[str] = []
        self.answered = asyncio.Event()
        self.pc.on("track", self._on_track)

    @property
    def seconds_heard(self) -> float:
        """Seconds of received audio louder than -50 dBov."""
        return self.frames_heard * FRAME_SAMPLES / SAMPLE_RATE

    async def start(self) -> None:
        """Send the first offer (and start polling ``receive`` if given)."""
        direction = "sendrecv" if self._speak else "recvonly"
        self._transceiver = self.pc.addTransceiver(self._track, direction=direction)
        self._count_packets(self._transceiver)
        if self._record_path is not None:
            # closed in close(): the recording outlives this method
            self._wav = wave.open(str(self._record_path), "wb")  # noqa: SIM115
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(SAMPLE_RATE)
        await self._offer()
        if self._receive is not None:
            self._spawn(self._pump())

    async def handle(self, message: dict) -> None:
        """Apply one node → client message (answer or renegotiate)."""
        parsed = parse_node_message(message)
        if isinstance(parsed, Answer):
            await self.pc.setRemoteDescription(RTCSessionDescription(parsed.sdp, "answer"))
            self.answers += 1
            self.answered.set()
        elif isinstance(parsed, Renegotiate):
            if parsed.can_speak is not None:
                # the node decides; a promoted bot starts sending, a demoted one stops
                self._speak = parsed.can_speak
            await self._offer()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.pc.connectionState != "connected":
                if self.pc.connectionState in ("failed", "closed"):
                    raise ConnectionError(f"peer connection {self.pc.connectionState}")
                await asyncio.sleep(0.02)

    def take_recording(self, other: BotPeer) -> None:
        """Go on writing OTHER's WAV (a bot's new connection after a reconnect)."""
        self._wav, other._wav = other._wav, None

    def heard_since(self, since: float) -> np.ndarray:
        """PCM (mono int16) received after monotonic time ``since``."""
        parts = [pcm for t, pcm in self.chunks if t >= since]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    async def close(self, keep_recording: bool = False) -> None:
        """KEEP_RECORDING leaves the WAV open for another peer's ``take_recording``."""
        self._track.stop()
        await self.pc.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._wav is not None and not keep_recording:
            self._wav.close()
            self._wav = None

    # ---- internals ------------------------------------------------------------------------

    async def _offer(self) -> None:
        if self._transceiver is not None:
            self._transceiver.direction = "sendrecv" if self._speak else "recvonly"
        offer = await self.pc.createOffer()
        with ice.host_addresses(self._ice_addresses):
            await self.pc.setLocalDescription(offer)
        local = self.pc.localDescription
        assert local is not None
        result = self._send(Offer(sdp=local.sdp).serialize())
        if inspect.isawaitable(result):
            await result

    async def _pump(self) -> None:
        assert self._receive is not None
        while True:
            message = await self._receive()
            try:
                await self.handle(message)
            except SignalError as exc:
                logger.warning("bot: bad message from node: %s", exc)
                self.errors.append(str(exc))

    def _count_packets(self, transceiver: RTCRtpTransceiver) -> None:
        """Count RTP packets at the receiver's documented raw hook, then let aiortc go on."""
        receiver = transceiver.receiver
        original = receiver._handle_rtp_packet

        async def counting(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.packets_received += 1
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = counting  # type: ignore[method-assign]

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._consume(track))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            data = frame.to_ndarray()
            channels = len(frame.layout.channels)
            if not frame.format.is_planar:
                data = data.reshape(-1, channels).T
            pcm = data.reshape(channels, -1).mean(axis=0)
            if data.dtype != np.int16:
                pcm = pcm * 32767.0
            pcm16 = np.clip(pcm, -32768, 32767).astype(np.int16)
            if dbov(pcm16.astype(np.float32) / 32768.0) > HEARD_DBOV:
                self.frames_heard += 1
            if self._keep_audio:
                self.chunks.append((time.monotonic(), pcm16))
            if self._wav is not None:
                self._wav.writeframes(pcm16.tobytes())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
