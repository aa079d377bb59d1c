"""What a node's media takes in and sends out, packet by packet (pass-through tests).

``record_uplink``: every payload a speaker's uplink takes (after SRTP and the RED unpacker,
where the node's receive tap pushes it), optionally losing some on the way.
``capture``: every RTP packet a bot receives, before anything else sees it.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc.rtp import RtpPacket

from media.client import BotPeer
from media.engine import RoomMedia
from media.session import Uplink

Captured = list[tuple[int, int, int, bytes]]  # (payload type, sequence, timestamp, payload)


def record_uplink(
    room: RoomMedia, name: str, drop: Callable[[int], bool] = lambda sequence: False
) -> set[bytes]:
    """Every payload NAME's uplink takes from now on (DROP: sequences lost before it)."""
    session = room.session(name)
    assert session is not None
    uplink: Uplink = session.uplink
    inner = uplink.push
    seen: set[bytes] = set()

    def push(sequence: int, payload: bytes, redundant: bool = False) -> None:
        if drop(sequence):
            return  # lost on the way: neither the packet nor a RED copy of it arrives
        seen.add(payload)
        inner(sequence, payload, redundant)

    uplink.push = push  # type: ignore[method-assign]
    return seen


def capture(bot: BotPeer) -> Captured:
    """Every RTP packet BOT receives from now on, before anything else sees it."""
    assert bot._transceiver is not None
    receiver = bot._transceiver.receiver
    inner = receiver._handle_rtp_packet
    seen: Captured = []

    async def hook(packet: RtpPacket, arrival_time_ms: int) -> None:
        seen.append((packet.payload_type, packet.sequence_number, packet.timestamp, packet.payload))
        await inner(packet, arrival_time_ms)

    receiver._handle_rtp_packet = hook  # type: ignore[method-assign]
    return seen


def payloads(seen: Captured, payload_type: int) -> list[bytes]:
    """The payloads of SEEN's packets of PAYLOAD_TYPE, in arrival order."""
    return [payload for pt, _, _, payload in seen if pt == payload_type]
