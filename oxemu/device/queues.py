"""Submission and completion queues as the controller sees them: rings in guest RAM."""
from collections import deque


class CompletionQueue:
    __slots__ = ("qid", "base", "size", "tail", "head", "phase", "irq_enabled", "vector",
                 "backlog", "sqs")

    def __init__(self, qid: int, base: int, size: int, irq_enabled: bool = False, vector: int = 0):
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

    @property
    def full(self) -> bool:
        return (self.tail + 1) % self.size == self.head


class SubmissionQueue:
    __slots__ = ("qid", "base", "size", "head", "tail", "cqid")

    def __init__(self, qid: int, base: int, size: int, cqid: int):
        self.qid = qid
        self.base = base
        self.size = size
        self.head = 0
        self.tail = 0
        self.cqid = cqid
