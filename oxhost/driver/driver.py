"""User-space NVMe driver: the controller bring-up, queues in guest RAM, doorbells
through the guest CPU, completions by phase bit, timeouts and batching (SPEC 9)."""
import ctypes
import logging
import time
from dataclasses import dataclass

import numpy as np

from oxemu.wire import (CAP, CC, CQE, CQE_DTYPE, CQE_SIZE, CSTS, PAGE_SIZE, SHN, SHST, SQE,
                        SQE_DTYPE, SQE_SIZE, AdminOpc, Cns, FeatureId, IdCtrl, LogPage, MediaLabel,
                        PciCfg, Reg, describe_status, doorbell_offset)

from .dmamem import DmaBuffer, DmaPool
from .errors import CommandTimeout, ControllerFatal, DriverError
from .prp import PrpBuilder

log = logging.getLogger(__name__)

_STEPS = np.arange(1, PAGE_SIZE // 8 + 1, dtype=np.int64) * PAGE_SIZE
_addressof, _from_buffer = ctypes.addressof, ctypes.c_char.from_buffer   # C-contiguous buffers only


@dataclass(frozen=True, slots=True)
class Completion:
    status: int          # status field (code << 0, phase stripped), 0 = success
    result: int          # dword 0-1 as one 64-bit value
    cid: int
    sq_head: int = 0


class QueuePair:
    """One SQ/CQ ring pair in guest RAM, with a PRP list page per SQ slot."""

    __slots__ = ("qid", "depth", "sq", "cq", "sq_tail", "cq_head", "phase", "inflight", "next_cid",
                 "cq_db_pending", "cq_db_every", "sq_db", "cq_db", "lists", "prp", "sq_ring", "cq_ring",
                 "list_words")

    def __init__(self, pool: DmaPool, qid: int, depth: int):
        self.qid = qid
        self.depth = depth
        self.sq = pool.alloc(depth * SQE_SIZE)
        self.cq = pool.alloc(depth * CQE_SIZE)
        self.sq_tail = 0
        self.cq_head = 0
        self.phase = 1
        self.inflight = 0
        self.next_cid = 0
        self.cq_db_pending = 0          # completions reaped since the CQ head doorbell
        self.cq_db_every = max(1, depth // 4)   # CQ head doorbells are batched, as drivers do
        self.sq_db = doorbell_offset(qid, False)
        self.cq_db = doorbell_offset(qid, True)
        self.lists = pool.alloc(depth * 4096)
        self.prp = [PrpBuilder(DmaBuffer(self.lists.addr + i * 4096, 4096,
                                         self.lists.array[i * 4096:(i + 1) * 4096], None))
                    for i in range(depth)]
        # the same rings and list pages as records and words, for many commands at once
        self.sq_ring = self.sq.array[:depth * SQE_SIZE].view(SQE_DTYPE)
        self.cq_ring = self.cq.array[:depth * CQE_SIZE].view(CQE_DTYPE)
        self.list_words = self.lists.array.view("<u8").reshape(depth, PAGE_SIZE // 8)

    def free(self) -> None:
        for b in (self.sq, self.cq, self.lists):
            b.free()


class NvmeDriver:
    """Brings the controller up and moves commands; knows nothing of open-channel.

    `stats`: commands, doorbells, and the bytes commands move over the bus: `bytes_out`
    host to device, `bytes_in` device to host, by the direction bits of the opcode (NVMe
    1.2, figure 36: 01b host to device, 10b device to host). A command's length is the
    `nbytes` its submitter passes (data through PRP1/PRP2 plus metadata through MPTR);
    the driver's own identify and log-page reads count theirs.
    """

    def __init__(self, machine, io_depth: int = 256, timeout: float = 10.0):
        self.m = machine
        self.timeout = timeout
        self.ram = machine.ram
        self.mv = memoryview(machine.ram)
        self.pool = DmaPool(machine.ram, machine.ram_free_base)
        self._bufs = {}
        self._ram_ptr = machine.ram.ctypes.data
        self._ram_size = machine.ram.shape[0]
        self.vendor = machine.config_read(PciCfg.VENDOR_ID)
        self.device_id = machine.config_read(PciCfg.DEVICE_ID)
        cap = machine.reg_read32(Reg.CAP) | (machine.reg_read32(Reg.CAP + 4) << 32)
        self.mqes = ((cap >> CAP.MQES_SHIFT) & CAP.MQES_MASK) + 1
        self.cap_timeout = ((cap >> CAP.TO_SHIFT) & CAP.TO_MASK) * 0.5
        self.version = machine.reg_read32(Reg.VS)
        self.stats = dict(commands=0, doorbells=0, bytes_out=0, bytes_in=0)
        self._scratch = self.pool.alloc(4096)
        self._index = np.arange(4096, dtype=np.int64)
        self.queues: dict[int, QueuePair] = {}
        self._event_cids: set[int] = set()    # asynchronous event requests outstanding
        self.events: list[int] = []           # their completions (dword 0), oldest first
        self._enable()
        self.id_ctrl = IdCtrl.from_buffer_copy(self.identify(Cns.CONTROLLER))
        self.max_transfer = 4096 << self.id_ctrl.mdts if self.id_ctrl.mdts else 1 << 30
        self._setup_io_queue(1, min(io_depth, self.mqes))

    # ------------------------------------------------------------ bring-up
    def _wait_csts(self, mask: int, want: int, what: str) -> None:
        deadline = time.monotonic() + max(self.cap_timeout, 1.0)
        while True:
            csts = self.m.reg_read32(Reg.CSTS)
            if csts & CSTS.CFS:
                raise ControllerFatal(f"controller fatal status while waiting for {what}")
            if csts & mask == want:
                return
            if time.monotonic() > deadline:
                raise ControllerFatal(f"controller timed out waiting for {what}")

    def _enable(self) -> None:
        m = self.m
        if m.reg_read32(Reg.CC) & CC.EN:
            m.reg_write32(Reg.CC, 0)
            self._wait_csts(CSTS.RDY, 0, "reset")
        aq = QueuePair(self.pool, 0, 32)
        self.queues[0] = aq
        m.reg_write32(Reg.AQA, (aq.depth - 1) | ((aq.depth - 1) << 16))
        m.reg_write32(Reg.ASQ, aq.sq.addr & 0xFFFFFFFF)
        m.reg_write32(Reg.ASQ + 4, aq.sq.addr >> 32)
        m.reg_write32(Reg.ACQ, aq.cq.addr & 0xFFFFFFFF)
        m.reg_write32(Reg.ACQ + 4, aq.cq.addr >> 32)
        m.reg_write32(Reg.CC, CC.EN | (6 << CC.IOSQES_SHIFT) | (4 << CC.IOCQES_SHIFT))
        self._wait_csts(CSTS.RDY, CSTS.RDY, "ready")

    def _setup_io_queue(self, qid: int, depth: int) -> None:
        c = self.admin(AdminOpc.SET_FEATURES, cdw10=FeatureId.NUM_QUEUES, cdw11=0)
        self._check(c, "set number of queues")
        qp = QueuePair(self.pool, qid, depth)
        self._check(self.admin(AdminOpc.CREATE_CQ, prp1=qp.cq.addr,
                               cdw10=qid | ((depth - 1) << 16), cdw11=1), "create I/O CQ")
        self._check(self.admin(AdminOpc.CREATE_SQ, prp1=qp.sq.addr,
                               cdw10=qid | ((depth - 1) << 16), cdw11=1 | (qid << 16)), "create I/O SQ")
        self.queues[qid] = qp

    @staticmethod
    def _check(c: Completion, what: str) -> Completion:
        if c.status:
            raise DriverError(f"{what}: {describe_status(c.status)}")
        return c

    def shutdown(self) -> None:
        """Delete the I/O queues and ask for a normal shutdown (flushes the media)."""
        m = self.m
        if m.ram is None:
            return
        try:
            for qid in [q for q in self.queues if q]:
                self.admin(AdminOpc.DELETE_SQ, cdw10=qid)
                self.admin(AdminOpc.DELETE_CQ, cdw10=qid)
                self.queues.pop(qid).free()
            cc = m.reg_read32(Reg.CC)
            m.reg_write32(Reg.CC, cc | (SHN.NORMAL << CC.SHN_SHIFT))
            self._wait_csts(3 << CSTS.SHST_SHIFT, SHST.COMPLETE << CSTS.SHST_SHIFT, "shutdown")
        except DriverError as e:
            log.warning("shutdown: %s", e)

    # ------------------------------------------------------------ host buffers
    def buf_alloc(self, nbytes: int) -> np.ndarray:
        """A zeroed buffer in guest RAM: I/O to and from it needs no bounce copy."""
        b = self.pool.alloc(nbytes)
        self._bufs[b.addr] = b
        return b.array

    def buf_free(self, arr: np.ndarray) -> bool:
        """Free a buf_alloc buffer; False when arr is not one."""
        addr = self.guest_addr(arr)
        b = self._bufs.pop(addr, None) if addr is not None else None
        if b is None:
            return False
        b.free()
        return True

    def guest_addr(self, arr) -> int | None:
        """Guest address of a contiguous array living in guest RAM (usable as a PRP), else None."""
        if not isinstance(arr, np.ndarray):
            return None
        try:            # a writable C-contiguous array: its address without the interface dict
            p = _addressof(_from_buffer(arr)) - self._ram_ptr
        except (TypeError, ValueError):
            if not arr.flags.c_contiguous:
                return None
            p = arr.__array_interface__["data"][0] - self._ram_ptr
        if 0 <= p and p + arr.nbytes <= self._ram_size and p % 4 == 0:
            return p
        return None

    # ------------------------------------------------------------ commands
    def identify(self, cns: int, nsid: int = 0) -> bytes:
        buf = self._scratch
        self._check(self.admin(AdminOpc.IDENTIFY, nsid=nsid, prp1=buf.addr, cdw10=cns, nbytes=4096),
                    "identify")
        return bytes(buf.array[:4096])

    def get_log_page(self, lid: int, nbytes: int, nsid: int = 0xFFFF_FFFF) -> bytes:
        """A log page (at most 4 KiB here), read through the scratch buffer."""
        numd = nbytes // 4 - 1
        self._check(self.admin(AdminOpc.GET_LOG_PAGE, nsid=nsid, prp1=self._scratch.addr,
                               cdw10=lid | (numd << 16), nbytes=nbytes), f"get log page 0x{lid:02x}")
        return bytes(self._scratch.array[:nbytes])

    def media_label(self) -> MediaLabel:
        """What the media holds and for whom (OX vendor log page 0xC0)."""
        return MediaLabel.from_buffer_copy(self.get_log_page(LogPage.OX_MEDIA_LABEL, 512))

    def set_target(self, label: MediaLabel) -> None:
        """Record the host target (kind, LUN range, uuid, capacity) in the media label."""
        buf = self._scratch
        buf.array[:512] = np.frombuffer(bytes(label), np.uint8)
        self._check(self.admin(AdminOpc.OX_SET_TARGET, prp1=buf.addr, nbytes=512),
                    "record the target in the media label")

    def request_event(self) -> None:
        """Submit an asynchronous event request (admin 0x0C) and return at once: it
        completes when the device has an event to report, and its completion dword 0
        joins `events` the next time the admin queue is reaped (poll_events)."""
        qp = self.queues[0]
        cid = qp.next_cid
        qp.next_cid = (cid + 1) & 0xFFFF
        SQE.pack_into(self.mv, qp.sq.addr + qp.sq_tail * SQE_SIZE, AdminOpc.ASYNC_EVENT_REQUEST, 0, cid, 0,
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        qp.sq_tail = (qp.sq_tail + 1) % qp.depth
        qp.inflight += 1
        self._event_cids.add(cid)
        self._ring_sq(qp, 1, qp.sq_tail)

    def poll_events(self) -> list[int]:
        """Reap what the admin completion queue holds now (the event requests the device
        completed) and hand over the events collected: a list of completion dwords 0."""
        qp = self.queues[0]
        while True:
            result, _, _, cid, st = CQE.unpack_from(self.mv, qp.cq.addr + qp.cq_head * CQE_SIZE)
            if (st & 1) != qp.phase:
                break
            self._advance(qp)
            if not self._event(cid, st >> 1, result):
                log.warning("admin queue: completion for unknown cid %d", cid)
        self._ring_cq(qp)
        out, self.events = self.events, []
        return out

    def _advance(self, qp: QueuePair) -> None:
        qp.cq_head += 1
        if qp.cq_head == qp.depth:
            qp.cq_head = 0
            qp.phase ^= 1
        qp.cq_db_pending += 1
        qp.inflight -= 1

    def _event(self, cid: int, status: int, result: int) -> bool:
        """An event request's completion: True when cid was one (a failed one is dropped)."""
        if cid not in self._event_cids:
            return False
        self._event_cids.discard(cid)
        if status:
            log.warning("asynchronous event request failed: %s", describe_status(status))
        else:
            self.events.append(result)
        return True

    def admin(self, opcode: int, nsid: int = 0, prp1: int = 0, prp2: int = 0, mptr: int = 0,
              cdw10: int = 0, cdw11: int = 0, cdw12: int = 0, cdw13: int = 0,
              cdw14: int = 0, cdw15: int = 0, nbytes: int = 0) -> Completion:
        """One admin command; `nbytes` is the data it moves (for stats)."""
        return self.submit(0, [(opcode, 0, nsid, mptr, prp1, prp2,
                                cdw10, cdw11, cdw12, cdw13, cdw14, cdw15)], nbytes=nbytes)[0]

    def submit_raw(self, qid: int, sqe: bytes, nbytes: int = 0) -> Completion:
        """Submit a raw 64-byte command as it is (the driver sets only its cid)."""
        if len(sqe) != SQE_SIZE:
            raise DriverError(f"an SQE is {SQE_SIZE} bytes, got {len(sqe)}")
        f = SQE.unpack(sqe)
        return self.submit(qid, [(f[0], f[1], f[3], f[6], f[7], f[8], *f[9:])],
                           cdw23=[(f[4], f[5])], nbytes=nbytes)[0]

    def _moved(self, opcode: int, nbytes: int) -> None:
        """Count nbytes moved by a command of this opcode, in the opcode's direction
        (bidirectional opcodes, 11b, are not counted: none is used)."""
        d = opcode & 3
        if d == 1:
            self.stats["bytes_out"] += nbytes
        elif d == 2:
            self.stats["bytes_in"] += nbytes

    def prps(self, qid: int, slot_offset: int, addr: int, nbytes: int) -> tuple[int, int]:
        """PRP1/PRP2 for a command that will take SQ slot tail+slot_offset of queue qid."""
        if (addr & (PAGE_SIZE - 1)) + nbytes <= PAGE_SIZE:      # one page: no list
            return addr, 0
        qp = self.queues[qid]
        return qp.prp[(qp.sq_tail + slot_offset) % qp.depth].prps(addr, nbytes)

    def prps_array(self, qid: int, addrs: np.ndarray, nbytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PRP1/PRP2 of the commands that will take the next len(addrs) SQ slots of queue
        qid, each a buffer contiguous in guest RAM (prps() for many commands at once)."""
        qp = self.queues[qid]
        addrs = np.asarray(addrs, dtype=np.int64)
        off = addrs % PAGE_SIZE
        npages = (off + nbytes + PAGE_SIZE - 1) // PAGE_SIZE
        first = addrs - off
        prp2 = np.where(npages == 2, first + PAGE_SIZE, 0)
        lst = np.flatnonzero(npages > 2)
        if lst.size:
            need = npages[lst] - 1
            if (need > PAGE_SIZE // 8).any():
                raise ValueError("a transfer needs more than one PRP list page")
            slots = (qp.sq_tail + lst) % qp.depth
            prp2[lst] = qp.lists.addr + slots * PAGE_SIZE
            w = qp.list_words
            if (need == need[0]).all():
                w[slots, :int(need[0])] = first[lst, None] + _STEPS[:int(need[0])]
            else:
                for sl, k, f in zip(slots.tolist(), need.tolist(), first[lst].tolist()):
                    w[sl, :k] = f + _STEPS[:k]
        return addrs, prp2

    def prps_run(self, qid: int, addr: int, stride: int, m: int, last_nbytes: int) -> tuple[np.ndarray, np.ndarray]:
        """prps_array for m commands whose buffers follow each other in guest RAM: command i
        at addr + i * stride, of stride bytes but the last (last_nbytes)."""
        qp = self.queues[qid]
        off = addr % PAGE_SIZE
        if stride % PAGE_SIZE or m > qp.depth:
            nb = np.full(m, stride, dtype=np.int64)
            nb[-1] = last_nbytes
            return self.prps_array(qid, addr + stride * np.arange(m, dtype=np.int64), nb)
        prp1 = addr + stride * self._index[:m]
        first = prp1 - off
        prp2 = np.zeros(m, dtype=np.int64)
        need = (off + stride - 1) // PAGE_SIZE               # list entries of a full command
        nfull = m if last_nbytes == stride else m - 1
        if need == 1:
            prp2[:nfull] = first[:nfull] + PAGE_SIZE
        elif need > 1:
            if need > PAGE_SIZE // 8:
                raise ValueError("a transfer needs more than one PRP list page")
            tail = qp.sq_tail
            slots = (tail + self._index[:nfull]) % qp.depth
            prp2[:nfull] = qp.lists.addr + slots * PAGE_SIZE
            qp.list_words[slots, :need] = first[:nfull, None] + _STEPS[:need]
        if nfull < m:
            prp2[m - 1] = qp.prp[(qp.sq_tail + m - 1) % qp.depth].prps(int(prp1[m - 1]), last_nbytes)[1]
        return prp1, prp2

    def submit_array(self, qid: int, sqes: np.ndarray, nbytes: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """submit() for commands given as SQE records (the driver sets their cids): written
        into the SQ at once, one doorbell, completions reaped at once. Returns the status
        fields (phase stripped) and results, in command order. `nbytes`: the data all of
        them move together (commands of one direction, that of the first)."""
        qp = self.queues.get(qid)
        if qp is None:
            raise DriverError(f"no queue {qid}")
        n = len(sqes)
        if n == 0 or n > qp.depth - 1:
            raise DriverError(f"batch of {n} commands for a queue of depth {qp.depth - 1}")
        depth = qp.depth
        cid0 = qp.next_cid
        sqes["cid"] = (cid0 + np.arange(n)) & 0xFFFF
        qp.next_cid = (cid0 + n) & 0xFFFF
        tail = qp.sq_tail
        first = min(n, depth - tail)
        qp.sq_ring[tail:tail + first] = sqes[:first]
        if first < n:
            qp.sq_ring[:n - first] = sqes[first:]
        tail = (tail + n) % depth
        qp.sq_tail = tail
        qp.inflight += n
        self._ring_sq(qp, n, tail)
        if nbytes:
            self._moved(int(sqes["opcode"][0]), nbytes)
        head = qp.cq_head
        first = min(n, depth - head)
        ents = qp.cq_ring[head:head + first]
        if first < n:
            ents = np.concatenate((ents, qp.cq_ring[:n - first]))
        phase = np.full(n, qp.phase, dtype=np.uint16)
        phase[first:] ^= 1
        if ((ents["status"] & 1) == phase).all() and (ents["cid"] == sqes["cid"]).all():
            qp.cq_head = (head + n) % depth
            if head + n >= depth:
                qp.phase ^= 1
            qp.cq_db_pending += n
            qp.inflight -= n
            return ents["status"] >> 1, ents["result"].copy()
        comps = self._reap(qp, sqes["cid"].tolist())           # not all there yet: one by one
        return (np.array([c.status for c in comps], dtype=np.uint16),
                np.array([c.result for c in comps], dtype=np.uint64))

    def _ring_sq(self, qp: QueuePair, n: int, tail: int) -> None:
        """The SQ tail doorbell for n new commands, with the CQ head doorbell when the
        device may need those CQ slots."""
        pending = qp.cq_db_pending
        if pending >= qp.cq_db_every or pending + n >= qp.depth - 1:
            self.m.reg_write32_many([(qp.cq_db, qp.cq_head), (qp.sq_db, tail)])
            qp.cq_db_pending = 0
        else:
            self.m.reg_write32(qp.sq_db, tail)
        stats = self.stats
        stats["doorbells"] += 1
        stats["commands"] += n

    def submit_one(self, qid: int, opcode: int, nsid: int, mptr: int, prp1: int, prp2: int,
                   cdw10: int, cdw11: int, cdw12: int, nbytes: int = 0) -> tuple[int, int]:
        """One command (cdw13-15 zero), its doorbell, its completion: (status, result).
        The 4 KiB request's path, in plain integers; `nbytes` is the data it moves."""
        qp = self.queues[qid]
        mv = self.mv
        cid = qp.next_cid
        qp.next_cid = (cid + 1) & 0xFFFF
        tail = qp.sq_tail
        SQE.pack_into(mv, qp.sq.addr + tail * SQE_SIZE, opcode, 0, cid, nsid, 0, 0, mptr, prp1,
                      prp2, cdw10, cdw11, cdw12, 0, 0, 0)
        tail += 1
        if tail == qp.depth:
            tail = 0
        qp.sq_tail = tail
        qp.inflight += 1
        self._ring_sq(qp, 1, tail)
        if nbytes:
            d = opcode & 3
            if d == 1:
                self.stats["bytes_out"] += nbytes
            elif d == 2:
                self.stats["bytes_in"] += nbytes
        head = qp.cq_head
        result, _, _, got, st = CQE.unpack_from(mv, qp.cq.addr + head * CQE_SIZE)
        if (st & 1) != qp.phase or got != cid:
            c = self._reap(qp, [cid])[0]
            return c.status, c.result
        head += 1
        if head == qp.depth:
            head = 0
            qp.phase ^= 1
        qp.cq_head = head
        qp.cq_db_pending += 1
        qp.inflight -= 1
        return st >> 1, result

    def submit(self, qid: int, cmds, cdw23=None, nbytes: int = 0) -> list[Completion]:
        """Write several commands into the SQ, ring the doorbell once, reap them all.

        Each command is (opcode, flags, nsid, mptr, prp1, prp2, cdw10..cdw15). `nbytes`: the
        data they move together (commands of one direction, that of the first).
        """
        qp = self.queues.get(qid)
        if qp is None:
            raise DriverError(f"no queue {qid}")
        n = len(cmds)
        if n == 0:
            return []
        if n > qp.depth - 1:
            raise DriverError(f"batch of {n} exceeds queue depth {qp.depth - 1}")
        mv, pack = self.mv, SQE.pack_into
        sq_base, depth = qp.sq.addr, qp.depth
        tail = qp.sq_tail
        cids = []
        for i, c in enumerate(cmds):
            cid = qp.next_cid
            qp.next_cid = (cid + 1) & 0xFFFF
            cids.append(cid)
            d2, d3 = cdw23[i] if cdw23 else (0, 0)
            pack(mv, sq_base + tail * SQE_SIZE, c[0], c[1], cid, c[2], d2, d3, *c[3:])
            tail = (tail + 1) % depth
        qp.sq_tail = tail
        qp.inflight += n
        self._ring_sq(qp, n, tail)                      # the device may reuse those CQ slots
        if nbytes:
            self._moved(cmds[0][0], nbytes)
        return self._reap(qp, cids)

    def _reap(self, qp: QueuePair, cids: list) -> list[Completion]:
        mv, unpack = self.mv, CQE.unpack_from
        cq_base = qp.cq.addr
        want = {cid: i for i, cid in enumerate(cids)}
        out = [None] * len(cids)
        left = len(cids)
        deadline = None
        while left:
            result, sq_head, sqid, cid, st = unpack(mv, cq_base + qp.cq_head * CQE_SIZE)
            if (st & 1) != qp.phase:
                if deadline is None:
                    deadline = time.monotonic() + self.timeout
                elif time.monotonic() > deadline:
                    self._ring_cq(qp)
                    if self.m.reg_read32(Reg.CSTS) & CSTS.CFS:
                        raise ControllerFatal("controller fatal status (CSTS.CFS): the device stopped")
                    raise CommandTimeout(f"{left} command(s) on queue {qp.qid} timed out after {self.timeout}s")
                if self.m.reg_read32(Reg.CSTS) & CSTS.CFS:
                    self._ring_cq(qp)
                    raise ControllerFatal("controller fatal status (CSTS.CFS): the device stopped")
                time.sleep(0)
                continue
            self._advance(qp)
            i = want.pop(cid, None)
            if i is None:
                if not (qp.qid == 0 and self._event(cid, st >> 1, result)):
                    log.warning("queue %d: completion for unknown cid %d", qp.qid, cid)
                continue
            out[i] = Completion(st >> 1, result, cid, sq_head)
            left -= 1
        if qp.qid == 0:
            self._ring_cq(qp)       # admin completions are rare: acknowledge at once
        return out

    def _ring_cq(self, qp: QueuePair) -> None:
        if qp.cq_db_pending:
            self.m.reg_write32(qp.cq_db, qp.cq_head)
            qp.cq_db_pending = 0
            self.stats["doorbells"] += 1

    def close(self) -> None:
        self.shutdown()


