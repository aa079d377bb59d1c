"""Media workers: processes that carry a node's audio (docs/scaling.md)."""
