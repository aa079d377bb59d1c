"""Live room audio: WebRTC sessions, the encode-once mixer and the fan-out (docs/media.md)."""
