"""Submission and completion queues as the controller sees them: rings in guest RAM."""
from collections import deque

import numpy as np

from ..wire import CQE_DTYPE, SQE_DTYPE


class CompletionQueue:
    __slots__ = ("qid", "base", "size", "tail", "head", "phase", "irq_enabled", "vector",
                 "backlog", "sqs", "ring")

    def __init__(self, qid: int, base: int, size: int, irq_enabled: bool = False, vector: int = 0,
                 ram: np.ndarray | None = None):
        self.qid = qid
        self.base = base
        self.size = size
        self.tail = 0
        self.head = 0
        self.phase = 1
        self.irq_enabled = irq_enabled
        self.vector = vector
        self.backlog = deque()      # CQEs waiting for room (the host is slow to reap)
        self.sqs = set()
        # the ring as records, to post many completions at once (the caller checked it
        # lies inside guest RAM)
        self.ring = None if ram is None else ram[base:base + size * CQE_DTYPE.itemsize].view(CQE_DTYPE)

    @property
    def full(self) -> bool:
        return (self.tail + 1) % self.size == self.head

    @property
    def room(self) -> int:
        """Entries that can be posted before the ring is full."""
        return (self.head - self.tail - 1) % self.size


class SubmissionQueue:
    __slots__ = ("qid", "base", "size", "head", "tail", "cqid", "ring")

    def __init__(self, qid: int, base: int, size: int, cqid: int, ram: np.ndarray | None = None):
        self.qid = qid
        self.base = base
        self.size = size
        self.head = 0
        self.tail = 0
        self.cqid = cqid
        self.ring = None if ram is None else ram[base:base + size * SQE_DTYPE.itemsize].view(SQE_DTYPE)

    def fetch(self, k: int) -> np.ndarray:
        """A copy of the k entries from head (the ring may wrap)."""
        h = self.head
        if h + k <= self.size:
            return self.ring[h:h + k].copy()
        return np.concatenate((self.ring[h:], self.ring[:h + k - self.size]))
