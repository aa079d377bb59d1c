"""Media tests run real aiortc peer connections on 127.0.0.1."""

from __future__ import annotations
