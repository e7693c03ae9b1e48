"""What crosses the wire, as the coordinator sees it: a view of Flower's Grid that gives every exchange the
round time-out (a site that stays away is dropped from the round once the SuperLink reports it
unavailable, or at the time-out, as the strategy's ``accept_failures`` allows), counts the bytes sent to and received from each SuperNode, and can keep a capture of every
reply's serialized content (``federated/received.bin``) so a test can prove no file name or patient id
ever reached the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable


def message_bytes(msg) -> int:
    """Serialized size of a message's records (arrays, metrics, configs) as they go on the wire."""
    from flwr.common.serde import recorddict_to_proto

    if not msg.has_content():
        return 0
    return len(recorddict_to_proto(msg.content).SerializeToString())


class WatchedGrid:
    """Delegates to Flower's Grid; ``send_and_receive`` gets the round time-out and is accounted for."""

    def __init__(self, grid, timeout: float, capture: Path | None = None):
        self._grid, self.timeout, self.capture = grid, timeout, capture
        self.nodes: dict[int, str] = {}  # node id -> "node-<k>" in order of first contact (no site names)
        self.begin_round()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def _label(self, node_id: int) -> str:
        return self.nodes.setdefault(int(node_id), f"node-{len(self.nodes) + 1}")

    def begin_round(self) -> None:
        self.sent: dict[str, int] = {}
        self.received: dict[str, int] = {}
        self.asked: set[str] = set()
        self.answered: set[str] = set()
        self.errors: list[str] = []

    def send_and_receive(self, messages: Iterable, *, timeout: float | None = None) -> Iterable:
        from flwr.common.serde import recorddict_to_proto

        messages = list(messages)
        for m in messages:
            node = self._label(m.metadata.dst_node_id)
            self.asked.add(node)
            self.sent[node] = self.sent.get(node, 0) + message_bytes(m)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout if timeout is not None else self.timeout))
        for r in replies:
            if r.has_error():  # the site's own error, or the SuperLink's "node unavailable" (no node id then)
                self.errors.append(str(r.error.reason)[:300])
                continue
            node = self._label(r.metadata.src_node_id)
            self.answered.add(node)
            self.received[node] = self.received.get(node, 0) + message_bytes(r)
            if self.capture is not None:
                self._capture(node, r, recorddict_to_proto(r.content).SerializeToString())
        return replies

    def _capture(self, node: str, reply, raw: bytes) -> None:
        """The reply as received (length-prefixed serialized records) and what it held (record kinds, each
        array's size in bytes, metric and config keys) as one JSON line."""
        import json

        with open(self.capture, "ab") as f:
            f.write(len(raw).to_bytes(8, "big") + raw)
        c = reply.content
        line = {"node": node, "type": reply.metadata.message_type,
                "arrays": {k: [len(a.data) for a in rec.values()] for k, rec in c.array_records.items()},
                "metrics": {k: sorted(rec.keys()) for k, rec in c.metric_records.items()},
                "configs": {k: sorted(rec.keys()) for k, rec in c.config_records.items()}}
        with open(self.capture.with_suffix(".jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")

    def round_summary(self) -> dict[str, Any]:
        return {"asked": len(self.asked), "replied": len(self.answered), "errors": self.errors,
                "dropped": sorted(self.asked - self.answered), "bytes_sent": dict(sorted(self.sent.items())),
                "bytes_received": dict(sorted(self.received.items()))}
