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
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import parse_stun_turn_uri
from aiortc.rtp import RtpPacket, is_rtcp

from media import ice, red, rtp
from media.codec import OpusEncoder
from media.conceal import Timeline
from media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm, dbov
from media.recovery import RedUnpacker
from media.signaling import Answer, Offer, Renegotiate, SignalError, parse_node_message
from media.uplink_loss import UplinkLoss

logger = logging.getLogger(__name__)

SendMessage = Callable[[dict], Awaitable[None] | None]
ReceiveMessage = Callable[[], Awaitable[dict]]
HEARD_DBOV = -50.0  # a frame louder than this counts towards seconds_heard
# The bot speaks as a browser does by default: mono Opus with in-band FEC (useinbandfec=1),
# its expected loss following the node's receiver reports (media/uplink_loss.py), and
# offers RED (Chrome's payload type 63) for what it hears. Once the node answers RED the
# bot sends RED too (each packet carries the two frames before it) and keeps its FEC at 0:
# the copies repair every loss LBRR could, at full quality, and LBRR's bits would come out
# of every frame's voice (libopus 32 kbit/s: PESQ-wb 3.96 with no FEC, 3.69 at 10 %).
UPLINK_BITRATE = 32_000
UPLINK_LOSS_PERCENT = 10  # the bot's fixed expected loss before fec16 (bench --speaker-fec)
REPORT_POLL_SECONDS = 0.25  # how often the bot looks for a new receiver report
RED_TYPE = 63
# The bot's voice keeps the level it had through aiortc's encoder, which upmixes mono to
# stereo at -3 dB (FFmpeg's centre mix level; measured: 0.706). A bot 3 dB louder made
# Chromium's echo canceller duck its microphone (tests/browser/test_browser_ice_privacy.py).
_LEVEL = 0.7071 / 32768.0


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
    """Plays PCM (looped) or silence in real time, 20 ms per frame.

    With an ENCODER the frames leave already encoded (``av.Packet``: aiortc's sender then
    only packs them), so the bot's uplink is mono Opus with in-band FEC like a browser's,
    not aiortc's fixed 96 kbps stereo without FEC.
    """

    kind = "audio"

    def __init__(self, pcm: np.ndarray | None, encoder: OpusEncoder | None = None) -> None:
        super().__init__()
        self._pcm = pcm
        self._encoder = encoder
        self._pos = 0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame | av.Packet:
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
        if self._encoder is not None:
            packet = av.Packet(self._encoder.encode(chunk.astype(np.float32) * _LEVEL))
            packet.pts = self._pts
            packet.time_base = fractions.Fraction(1, SAMPLE_RATE)
            self._pts += FRAME_SAMPLES
            return packet
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
        protect: bool = True,
        on_packet: Callable[[], None] | None = None,
    ) -> None:
        """``speak`` (default: True when ``play`` is given) makes offers ``sendrecv``.

        ``configuration`` (ICE servers and policy, see :func:`rtc_configuration`) replaces
        the plain ``stun_servers`` list. ``protect``: send in-band FEC, offer RED and
        conceal lost packets in the recording (False: the baseline of bench/loss.py — a
        lost frame is recorded as silence).
        """
        self._send = send
        self._receive = receive
        self._on_packet = on_packet  # each RTP packet received (gap measurements)
        self._pcm = read_wav(play) if play is not None else None
        self._speak = speak if speak is not None else play is not None
        self._record_path = record
        self._ice_addresses = ice_addresses
        if configuration is None:
            servers = [RTCIceServer(urls=url) for url in stun_servers]
            configuration = RTCConfiguration(iceServers=servers)
        self.pc = RTCPeerConnection(configuration)
        # in-band FEC on, its share 0 until the node reports loss (protect=False: never)
        self._encoder = OpusEncoder(UPLINK_BITRATE, fec=protect)
        self._encoder.set_packet_loss(0)
        self.uplink_loss = UplinkLoss()
        self._track = LoopTrack(self._pcm, self._encoder)
        self._protect = protect
        self._timeline = Timeline(protect=protect)
        self._unpacker = RedUnpacker()
        self._red_type: int | None = None
        self._opus_type: int | None = None
        self._red_uplink = False
        self._record_start = 0.0
        self._recorded = 0  # samples written to the recording
        self._transceiver: RTCRtpTransceiver | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._keep_audio = keep_audio
        self._wav: wave.Wave_write | None = None
        self.chunks: list[tuple[float, np.ndarray]] = []  # (arrival monotonic time, pcm)
        self.packets_received = 0
        self.octets_received = 0  # RTP payload bytes (RED included): the downlink's cost
        self.frames_heard = 0
        self.answers = 0
        self.errors: list[str] = []
        self.answered = asyncio.Event()
        self.pc.on("track", self._on_track)

    @property
    def concealed(self) -> dict[str, int]:
        """How the recording's lost frames were filled: fec, plc, silent (baseline)."""
        stats = self._timeline.stats
        return {"fec": stats.fec, "plc": stats.plc, "silent": stats.silent}

    @property
    def uplink_fec_percent(self) -> int:
        """The encoder's expected packet loss now (what the node's reports drove it to)."""
        return self._encoder.packet_loss

    @property
    def speak(self) -> bool:
        """Whether our offers send audio (the node's last renegotiate decides)."""
        return self._speak

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
            self._record_start = time.monotonic()
        await self._offer()
        if self._protect:
            self._spawn(self._follow_reports())
        if self._receive is not None:
            self._spawn(self._pump())

    async def handle(self, message: dict) -> None:
        """Apply one node → client message (answer or renegotiate)."""
        parsed = parse_node_message(message)
        if isinstance(parsed, Answer):
            await self.pc.setRemoteDescription(RTCSessionDescription(parsed.sdp, "answer"))
            self._learn_types(parsed.sdp)
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
        self._record_start, self._recorded = other._record_start, other._recorded

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
        if self._wav is not None:
            self._record(self._timeline.flush())
        if self._wav is not None and not keep_recording:
            # the recording is as long as the session: what never arrived is silence
            missing = int((time.monotonic() - self._record_start) * SAMPLE_RATE) - self._recorded
            if missing > 0:
                self._wav.writeframes(np.zeros(missing, dtype="<i2").tobytes())
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
        sdp = local.sdp
        assert self._transceiver is not None
        opus = [c for c in self._transceiver._codecs if c.mimeType.lower() == "audio/opus"]
        if self._protect and opus and opus[0].payloadType is not None:
            sdp = red.offer_red(sdp, RED_TYPE, opus[0].payloadType)
        result = self._send(Offer(sdp=sdp).serialize())
        if inspect.isawaitable(result):
            await result

    async def _follow_reports(self) -> None:
        """Set the encoder's expected loss from the node's receiver reports on our uplink.

        aiortc's ``RTCRtpSender`` turns each report block about our SSRC into a new
        ``remote-inbound-rtp`` entry of its public ``getStats()`` (``fractionLost``: RFC
        3550's 8-bit fraction); a new entry object is a new report.
        """
        assert self._transceiver is not None
        sender = self._transceiver.sender
        last: object = None
        while True:
            await asyncio.sleep(REPORT_POLL_SECONDS)
            if self.pc.connectionState in ("failed", "closed"):
                return
            if not self._speak or self.pc.connectionState != "connected":
                continue  # a listener's sender sends nothing to report on
            stats = await sender.getStats()
            for entry in stats.values():
                if entry.type == "remote-inbound-rtp" and entry is not last:
                    last = entry
                    fraction = getattr(entry, "fractionLost", None)
                    if isinstance(fraction, int | float):
                        percent = self.uplink_loss.add(int(fraction), time.monotonic())
                        self._follow_loss(percent)

    async def _pump(self) -> None:
        assert self._receive is not None
        while True:
            message = await self._receive()
            try:
                await self.handle(message)
            except SignalError as exc:
                logger.warning("bot: bad message from node: %s", exc)
                self.errors.append(str(exc))

    def _learn_types(self, answer: str) -> None:
        """The negotiated Opus and RED payload types (aiortc itself drops RED)."""
        assert self._transceiver is not None
        opus = [c for c in self._transceiver._codecs if c.mimeType.lower() == "audio/opus"]
        self._opus_type = opus[0].payloadType if opus else None
        reds = red.sdp_red_codecs(answer) if self._protect else []
        self._red_type = reds[0].payloadType if reds else None
        if reds and not self._red_uplink:
            self._send_red(self._transceiver.sender.transport)
        if reds and all(c.mimeType.lower() != red.RED_MIME for c in self._transceiver._codecs):
            # aiortc's router drops packets of a payload type the receiver was not started
            # with; its receiver starts after ICE and DTLS (a task setRemoteDescription
            # spawns), so RED added now is registered. aiortc never decodes RED itself:
            # the hook above hands it each RED packet's primary as plain Opus.
            self._transceiver._codecs = [*self._transceiver._codecs, reds[0]]

    def _follow_loss(self, percent: int) -> None:
        """Set the encoder's expected loss (its in-band FEC share) to PERCENT, or keep it
        at 0 while our packets go out as RED: a lost frame comes back whole from the packet
        after it, which is all the FEC that packet's LBRR could have rebuilt."""
        target = 0 if self._red_uplink else percent
        if target != self._encoder.packet_loss:
            self._encoder.set_packet_loss(target)

    @property
    def uplink_red(self) -> bool:
        """Whether our packets go out as RED (the node answered ``audio/red``)."""
        return self._red_uplink

    def _send_red(self, transport: RTCDtlsTransport) -> None:
        """Send our Opus frames as RED, each with the two before it (``red.RED_DEPTH``;
        Chrome repeats one).

        aiortc's sender cannot send a payload type it has no encoder for; its packets are
        rewritten on their way to SRTP (``RTCDtlsTransport._send_rtp``): same header, the
        payload type set to RED's and the payload replaced by RED built from the last three.
        """
        original = transport._send_rtp
        history = red.RedStream()
        self._red_uplink = True
        self._follow_loss(self.uplink_loss.percent)

        async def send_rtp(data: bytes) -> None:
            opus, red_type = self._opus_type, self._red_type
            if is_rtcp(data) or opus is None or red_type is None or data[1] & 0x7F != opus:
                await original(data)
                return
            head = rtp.header_length(data)
            history.push(data[head:], int.from_bytes(data[4:8], "big"))
            marker = data[1] & 0x80
            await original(data[:1] + bytes([marker | red_type]) + data[2:head]
                           + history.payload(opus))  # fmt: skip

        transport._send_rtp = send_rtp  # type: ignore[method-assign]

    def _count_packets(self, transceiver: RTCRtpTransceiver) -> None:
        """Take RTP packets at the receiver's documented raw hook, then let aiortc go on.

        The recording is written from here, on the sender's RTP timeline (lost frames
        concealed, never dropped: media/conceal.py); aiortc's own jitter buffer and decoder
        still run for ``chunks``/``seconds_heard`` and its receiver reports, and get a RED
        packet's primary frame as plain Opus (aiortc does not know RED).
        """
        receiver = transceiver.receiver
        original = receiver._handle_rtp_packet

        async def counting(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.packets_received += 1
            if self._on_packet is not None:
                self._on_packet()
            self.octets_received += len(packet.payload)
            is_red = packet.payload_type == self._red_type and self._opus_type is not None
            restarts = self._timeline.restarts
            for seq, timestamp, payload in self._unpacker.unpack(
                packet.sequence_number, packet.timestamp, packet.payload, is_red
            ):
                self._record(self._timeline.push(seq, timestamp, payload))
            if self._timeline.restarts != restarts:
                self._pad_to_now()  # the sender restarted: the outage was silence
            if is_red:
                packet = _primary(packet, self._opus_type or 0)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = counting  # type: ignore[method-assign]

    def _pad_to_now(self) -> None:
        """Silence up to the present, on the wall clock (before the last frames written)."""
        if self._wav is None or not self._recorded:
            return
        missing = int((time.monotonic() - self._record_start) * SAMPLE_RATE) - self._recorded
        if missing > 0:
            self._wav.writeframes(np.zeros(missing, dtype="<i2").tobytes())
            self._recorded += missing

    def _record(self, frames: list[Pcm]) -> None:
        if self._wav is None or not frames:
            return
        if not self._recorded:  # the first sound: the time before it was silence
            lead = int((time.monotonic() - self._record_start) * SAMPLE_RATE)
            lead -= len(frames) * FRAME_SAMPLES
            if lead > 0:
                self._wav.writeframes(np.zeros(lead, dtype="<i2").tobytes())
                self._recorded += lead
        pcm = np.clip(np.concatenate(frames) * 32768.0, -32768, 32767).astype("<i2")
        self._wav.writeframes(pcm.tobytes())
        self._recorded += len(pcm)

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

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _primary(packet: RtpPacket, opus_type: int) -> RtpPacket:
    """A RED packet as the plain Opus packet of its primary frame (same header otherwise)."""
    try:
        primary = red.parse(packet.payload)[-1].payload
    except red.RedError:
        primary = b""
    plain = RtpPacket(
        payload_type=opus_type,
        marker=packet.marker,
        sequence_number=packet.sequence_number,
        timestamp=packet.timestamp,
        ssrc=packet.ssrc,
        payload=primary,
    )
    plain.extensions = packet.extensions
    return plain
