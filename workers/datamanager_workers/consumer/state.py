"""What the consumer knows of its NATS connection; the service writes it, endpoints and logs read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConnectionState:
    connected: bool = False
    subscribed: bool = False
    draining: bool = False
    connects: int = 0  # successful connections, the first included
    dropped: int = 0  # messages the client discarded because counting fell too far behind

    @property
    def ready(self) -> bool:
        """Connected and subscribed, and not on the way out: the consumer is counting the stream."""
        return self.connected and self.subscribed and not self.draining

    @property
    def reconnects(self) -> int:
        return max(self.connects - 1, 0)

    def as_dict(self) -> dict[str, object]:
        return {
            "connected": self.connected,
            "subscribed": self.subscribed,
            "ready": self.ready,
            "reconnects": self.reconnects,
            "dropped": self.dropped,
        }
