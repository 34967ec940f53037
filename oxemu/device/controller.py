"""NVMe 1.2 controller: register file, admin/I-O queue engine, completion posting (SPEC 5).

Synchronous: a doorbell write runs every newly submitted command to completion before
the store instruction retires, which is how the emulated bus stays deterministic. The
device mode (open-channel pass-through, AppNVM, a plug-in FTL) plugs in through one
interface, oxemu.device.mode.DeviceMode, like FEMU's ops table.
"""
import logging
import threading
import time
import traceback
from collections import Counter

import numpy as np

from ..machine.dma import DmaEngine
from ..volt import TimingMode
from ..wire import (CAP, CC, CQE, CSTS, DOORBELL_BASE, SHN, SHST, SQE_SIZE, CQE_SIZE,
                    PAGE_SIZE, Reg, Status)
from .command import Command
from .errors import CommandError
from .queues import CompletionQueue, SubmissionQueue

log = logging.getLogger(__name__)

MQES = 4095                 # largest queue: 4096 entries
AER_LIMIT = 4               # asynchronous event requests held at once (IdCtrl.aerl + 1)
MAX_QUEUES = 64             # I/O queue pairs the controller offers
CAP_VALUE = ((MQES << CAP.MQES_SHIFT) | CAP.CQR | (20 << CAP.TO_SHIFT)
             | (1 << CAP.CSS_SHIFT) | (0 << CAP.MPSMIN_SHIFT) | (0 << CAP.MPSMAX_SHIFT))
VERSION = 0x00010200
_RDY = int(CSTS.RDY)
_RDY_CFS = int(CSTS.RDY | CSTS.CFS)
_CFS = int(CSTS.CFS)
_WINDOW = 256               # busy time: doorbells per reading of the CPU clock
_GAP_NS = 1_000_000         # a pause this long between doorbells closes the window


class PowerLost(Exception):
    """The media lost power mid-command: nothing more completes."""


class Controller:
    """Register file and queue engine. `mode` (a DeviceMode) executes all I/O and persists on
    a reset; `admin` the admin command set; `on_shutdown` runs at CC.SHN."""

    def __init__(self, dma: DmaEngine, mode, admin, tracer=None, on_shutdown=None):
        self.dma = dma
        self._ram = dma.ram
        self.ram = memoryview(self._ram)
        self.mode = mode
        self.admin = admin
        self.tracer = tracer
        self.timing = mode.timing
        self.on_shutdown = on_shutdown
        self.irq = None                   # optional callable(vector) for the host
        self.cc = 0
        self.csts = 0
        self.aqa = 0
        self.asq = 0
        self.acq = 0
        self.intms = 0
        self.sqs: dict[int, SubmissionQueue] = {}
        self.cqs: dict[int, CompletionQueue] = {}
        self.seq = 0
        self.num_queues = (MAX_QUEUES, MAX_QUEUES)
        self.counters = dict(admin_cmds=0, io_cmds=0, errors=0, doorbells=0)
        self.opcodes = Counter()          # I/O commands by opcode (SMART host reads/writes)
        # Time spent executing commands (instrumentation, `busy_ns`): the CPU time of the
        # thread ringing under the timing model (the lab's figures), wall time otherwise.
        # Reading the CPU clock is a system call (~1 us; twice a doorbell was a tenth of a
        # 4 KiB command), so under the model doorbells read the wall clock and a window of
        # _WINDOW of them (with the host's work between) reads the CPU clock once: their
        # wall time counts at the window's CPU/wall ratio (below 1 when the thread was
        # preempted, the same share in the host and in the device). A pause of _GAP_NS
        # between doorbells (the host idled) closes the window before it. In realtime mode
        # doorbells sleep: each reads the CPU clock itself, as all did before.
        realtime = self.timing.mode is TimingMode.REALTIME
        self._clock = time.thread_time_ns if realtime else time.perf_counter_ns
        self._cpu = time.thread_time_ns if self.timing.enabled and not realtime else None
        self._busy = 0                    # settled
        self._span_busy = 0               # clock ns in doorbells since the window opened
        self._rings = 0                   # doorbells since the window opened
        self._last_end = 0                # clock at the end of the last doorbell
        self._window = (self._cpu(), self._clock(), threading.get_ident()) if self._cpu else None
        self._realtime = realtime
        self.error_log = []
        self._regs32 = {}
        self.unpowered = False            # the media lost power: fatal until the machine goes
        self._aers: list[int] = []        # cids of the asynchronous event requests outstanding
        self._events: list[int] = []      # events raised while none was outstanding

    def lose_power(self) -> None:
        """The power was cut: CSTS.CFS for good (a reset does not bring the media back)."""
        self.unpowered = True
        self.csts |= _CFS

    # ---------------------------------------------------------------- registers
    def mmio_read(self, offset: int, size: int) -> int:
        try:
            v = self._read64(offset & ~7)
            v >>= (offset & 7) * 8
            return v & ((1 << (size * 8)) - 1)
        except Exception:                       # a device bug must not crash the bus
            log.error("controller fault on register read 0x%x:\n%s", offset, traceback.format_exc())
            self.csts |= _CFS
            return 0xFFFFFFFF

    def _read64(self, off: int) -> int:
        if off == Reg.CAP:
            return CAP_VALUE
        if off == Reg.VS & ~7:          # VS @8, INTMS @0xC
            return VERSION | (self.intms << 32)
        if off == Reg.INTMC & ~7:       # INTMC @0x10, CC @0x14
            return self.intms | (self.cc << 32)
        if off == Reg.CSTS & ~7:        # reserved @0x18, CSTS @0x1C
            return self.csts << 32
        if off == Reg.NSSR & ~7:        # NSSR @0x20, AQA @0x24
            return self.aqa << 32
        if off == Reg.ASQ:
            return self.asq
        if off == Reg.ACQ:
            return self.acq
        return 0

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        try:
            if offset >= DOORBELL_BASE:
                self._doorbell(offset, value)
            else:
                self._write_reg(offset, size, value)
        except PowerLost:
            self.lose_power()
        except Exception:
            log.error("controller fault on register write 0x%x=0x%x:\n%s", offset, value,
                      traceback.format_exc())
            self.csts |= _CFS

    def _write_reg(self, offset: int, size: int, value: int) -> None:
        if size == 8:
            self._write_reg(offset, 4, value & 0xFFFFFFFF)
            self._write_reg(offset + 4, 4, value >> 32)
            return
        if offset == Reg.CC:
            self._set_cc(value)
        elif offset == Reg.INTMS:
            self.intms |= value
        elif offset == Reg.INTMC:
            self.intms &= ~value
        elif offset == Reg.AQA:
            self.aqa = value
        elif offset == Reg.ASQ:
            self.asq = (self.asq & ~0xFFFFFFFF) | value
        elif offset == Reg.ASQ + 4:
            self.asq = (self.asq & 0xFFFFFFFF) | (value << 32)
        elif offset == Reg.ACQ:
            self.acq = (self.acq & ~0xFFFFFFFF) | value
        elif offset == Reg.ACQ + 4:
            self.acq = (self.acq & 0xFFFFFFFF) | (value << 32)
        # writes to read-only or reserved registers are ignored, as hardware does

    def _set_cc(self, value: int) -> None:
        old = self.cc
        self.cc = value
        if self.unpowered:
            return
        was_en, en = old & CC.EN, value & CC.EN
        shn = (value >> CC.SHN_SHIFT) & 3
        if shn != SHN.NONE and ((old >> CC.SHN_SHIFT) & 3) == SHN.NONE:
            self.csts = (self.csts & ~(3 << CSTS.SHST_SHIFT)) | (int(SHST.OCCURRING) << CSTS.SHST_SHIFT)
            if self.on_shutdown:
                self.on_shutdown()
            self.csts = (self.csts & ~(3 << CSTS.SHST_SHIFT)) | (int(SHST.COMPLETE) << CSTS.SHST_SHIFT)
        if en and not was_en:
            self._enable()
        elif was_en and not en:
            self._reset()

    def _enable(self) -> None:
        asqs = (self.aqa & 0xFFF) + 1
        acqs = ((self.aqa >> 16) & 0xFFF) + 1
        iosqes = (self.cc >> CC.IOSQES_SHIFT) & 0xF
        iocqes = (self.cc >> CC.IOCQES_SHIFT) & 0xF
        mps = (self.cc >> CC.MPS_SHIFT) & 0xF
        ok = (asqs >= 2 and acqs >= 2 and self.asq % PAGE_SIZE == 0 and self.acq % PAGE_SIZE == 0
              and mps == 0 and iosqes in (0, 6) and iocqes in (0, 4))
        try:
            self.dma.check(self.asq, asqs * SQE_SIZE)
            self.dma.check(self.acq, acqs * CQE_SIZE)
        except Exception:
            ok = False
        if not ok:
            log.warning("controller enable with an invalid admin queue setup: CSTS.CFS")
            self.csts |= _CFS
            return
        self.cqs = {0: CompletionQueue(0, self.acq, acqs, irq_enabled=True, ram=self._ram)}
        self.sqs = {0: SubmissionQueue(0, self.asq, asqs, 0, ram=self._ram)}
        self.cqs[0].sqs.add(0)
        self.csts = _RDY

    def _reset(self) -> None:
        """CC.EN 1 -> 0: drop every queue (and the event requests outstanding); the media
        state is flushed (nvme reset)."""
        self.sqs.clear()
        self.cqs.clear()
        self._aers.clear()
        self._events.clear()
        self.csts = 0
        self.mode.reset()

    # ---------------------------------------------------------------- queues
    def _doorbell(self, offset: int, value: int) -> None:
        self.counters["doorbells"] += 1
        idx = (offset - DOORBELL_BASE) >> 2
        qid, is_cq = idx >> 1, idx & 1
        if self.csts & _RDY_CFS != _RDY:        # plain ints: IntFlag math is slow here
            return
        if is_cq:
            cq = self.cqs.get(qid)
            if cq is None or value >= cq.size:
                log.warning("invalid CQ doorbell: qid %d value %d", qid, value)
                return
            self._cq_head(cq, value)
        else:
            sq = self.sqs.get(qid)
            if sq is None or value >= sq.size:
                log.warning("invalid SQ doorbell: qid %d value %d", qid, value)
                return
            sq.tail = value
            clock = self._clock
            t0 = clock()
            if t0 - self._last_end > _GAP_NS:
                self._settle(self._last_end)
            self._run_sq(sq)
            self._last_end = t1 = clock()
            self._span_busy += t1 - t0
            self._rings += 1
            if self._rings >= _WINDOW:
                self._settle(t1)

    @property
    def busy_ns(self) -> int:
        """Time spent executing commands so far (see __init__)."""
        now = self._clock()
        self._settle(now if now - self._last_end <= _GAP_NS else self._last_end)
        return self._busy

    def _settle(self, end: int) -> None:
        """Count the doorbells' time since the window opened, at the window's CPU/wall
        ratio up to `end`, and open the next window."""
        busy, self._span_busy, self._rings = self._span_busy, 0, 0
        if self._cpu is None:
            self._busy += busy
            return
        cpu, now, tid = self._cpu(), self._clock(), threading.get_ident()
        cpu0, wall0, tid0 = self._window
        if busy:
            ratio = 1.0
            if tid == tid0 and end > wall0:
                ratio = (cpu - cpu0) / (end - wall0)
                if ratio > 1:               # the host worked through the pause: count it in
                    ratio = min(1.0, (cpu - cpu0) / (now - wall0))
            self._busy += round(busy * ratio)
        self._window = (cpu, now, tid)

    def _cq_head(self, cq: CompletionQueue, head: int) -> None:
        cq.head = head
        while cq.backlog and not cq.full:
            self._post(cq, *cq.backlog.popleft())

    def _run_sq(self, sq: SubmissionQueue) -> None:
        cq = self.cqs[sq.cqid]
        qid = sq.qid
        admin = qid == 0
        head, size = sq.head, sq.size
        if sq.tail == (head + 1) % size:                 # one command: the 4 KiB request's case
            cmd = Command.unpack(self.ram, sq.base + head * SQE_SIZE, qid, self.seq)
            self.seq += 1
            sq.head = head = sq.tail
            status, result, done_ns = self._execute(cmd, admin)
            if status is None:                           # an event request: completes later
                return
            if self.tracer is not None and not admin:
                self.tracer.completed(cmd, status)
            if self._realtime:
                self.timing.wait_until(done_ns)
            if cq.full:
                cq.backlog.append((result, head, qid, cmd.cid, status))
            else:
                self._post(cq, result, head, qid, cmd.cid, status)
            self.timing.advance(done_ns)
            return
        # Several commands: a run of I/O commands the mode can execute at once
        # (mode.io_run: same opcode, no trace, no injected faults) behaves exactly as the
        # commands one by one -- the mode declines whatever it cannot prove so, and those
        # run alone, in order.
        run = None if admin or self.tracer is not None else self.mode.io_run
        k = (sq.tail - sq.head) % sq.size
        h0, seq0 = sq.head, self.seq
        ents = sq.fetch(k) if run is not None else None
        sq.head = sq.tail
        self.seq += k
        batch_done = 0
        i = 0
        while i < k:
            m, res = run(ents, i, self.timing.now_ns) if run is not None else (k, None)
            if res is None:                  # one by one: the next m (at least one)
                for j in range(i, i + max(m, 1)):
                    cmd = Command.unpack(self.ram, sq.base + (h0 + j) % sq.size * SQE_SIZE, sq.qid, seq0 + j)
                    status, result, done_ns = self._execute(cmd, admin)
                    if status is None:                   # an event request: completes later
                        continue
                    if self.tracer is not None and not admin:
                        self.tracer.completed(cmd, status)
                    self._complete(cq, sq, cmd, status, result, done_ns, (h0 + j + 1) % sq.size)
                    batch_done = max(batch_done, done_ns)
                i += max(m, 1)
                continue
            status, result, done = res
            self.counters["io_cmds"] += m
            self.opcodes[int(ents["opcode"][i])] += m
            cids = ents["cid"][i:i + m]
            for e in np.flatnonzero(status).tolist():
                self._log_error_at(sq.qid, int(cids[e]), int(status[e]))
            heads = (h0 + i + 1 + np.arange(m)) % sq.size
            self._complete_many(cq, sq, cids, status, result, done, heads)
            batch_done = max(batch_done, int(done.max()))
            i += m
        # Commands rung in together ran in parallel; the host waits for all of them
        # before it rings again, so the virtual clock moves to the last completion.
        self.timing.advance(batch_done)

    def _complete_many(self, cq, sq, cids, status, result, done, heads) -> None:
        """Post m completions in order, at once when the ring has room for them all."""
        m = len(cids)
        if cq.backlog or cq.room < m or cq.ring is None or self.irq is not None or self._realtime:
            for j in range(m):
                self.timing.wait_until(int(done[j]))
                ent = (int(result[j]), int(heads[j]), sq.qid, int(cids[j]), int(status[j]))
                if cq.full:
                    cq.backlog.append(ent)
                else:
                    self._post(cq, *ent)
            return
        t = cq.tail
        first = min(m, cq.size - t)
        for a, b, lo, phase in ((t, t + first, 0, cq.phase), (0, m - first, first, cq.phase ^ 1)):
            if b <= a:
                continue
            r = cq.ring[a:b]
            hi = lo + (b - a)
            r["result"] = result[lo:hi]
            r["sq_head"] = heads[lo:hi]
            r["sq_id"] = sq.qid
            r["cid"] = cids[lo:hi]
            r["status"] = ((status[lo:hi] & 0x7FFF) << 1) | phase
        cq.tail = (t + m) % cq.size
        if t + m >= cq.size:
            cq.phase ^= 1

    def _complete(self, cq, sq, cmd, status, result, done_ns, head) -> None:
        self.timing.wait_until(done_ns)
        if cq.full:
            cq.backlog.append((result, head, sq.qid, cmd.cid, status))
        else:
            self._post(cq, result, head, sq.qid, cmd.cid, status)

    def _execute(self, cmd: Command, admin: bool):
        arrival = self.timing.now_ns
        try:
            if admin:
                self.counters["admin_cmds"] += 1
                status, result = self.admin.execute(cmd)
                if status is None:                   # an event request held for later
                    return None, 0, arrival
                done = arrival
                if self.tracer is not None:
                    self.tracer.admin_cmd(cmd.seq, cmd, status)
            else:
                self.counters["io_cmds"] += 1
                self.opcodes[cmd.opcode] += 1
                status, result, done = self.mode.io(cmd, arrival)
        except CommandError as e:
            status, result, done = e.status, e.failed, arrival
            log.debug("cmd 0x%02x cid %d: %s", cmd.opcode, cmd.cid, e)
        except PowerLost:
            raise
        except Exception:
            log.error("internal error on opcode 0x%02x:\n%s", cmd.opcode, traceback.format_exc())
            status, result, done = Status.INTERNAL, 0, arrival
        if status:
            self._log_error(cmd, status)
        return status, result, done

    # ---------------------------------------------------------------- asynchronous events
    def event_request(self, cmd: Command):
        """An asynchronous event request (NVMe 1.2, 5.2): (status, result) at once with an
        event raised earlier, else (None, 0): held until the device raises one."""
        if self._events:
            return Status.SUCCESS, self._events.pop(0)
        if len(self._aers) >= AER_LIMIT:
            return Status.ASYNC_EVENT_LIMIT | Status.DNR, 0
        self._aers.append(cmd.cid)
        return None, 0

    def async_event(self, result: int) -> None:
        """The device mode has an event to report (completion dword 0 of an event request):
        complete the oldest request outstanding on the admin queue, or keep it for the next."""
        cq, sq = self.cqs.get(0), self.sqs.get(0)
        if not self._aers or cq is None or sq is None:
            self._events.append(result)
            return
        cid = self._aers.pop(0)
        if cq.full:
            cq.backlog.append((result, sq.head, 0, cid, Status.SUCCESS))
        else:
            self._post(cq, result, sq.head, 0, cid, Status.SUCCESS)

    def _log_error(self, cmd: Command, status: int) -> None:
        self._log_error_at(cmd.sqid, cmd.cid, status)

    def _log_error_at(self, sqid: int, cid: int, status: int) -> None:
        self.counters["errors"] += 1
        self.error_log.append((self.counters["errors"], sqid, cid, status))
        del self.error_log[:-64]

    def _post(self, cq: CompletionQueue, result, sq_head, sqid, cid, status) -> None:
        CQE.pack_into(self.ram, cq.base + cq.tail * CQE_SIZE, result, sq_head, sqid, cid,
                      ((status & 0x7FFF) << 1) | cq.phase)
        cq.tail += 1
        if cq.tail == cq.size:
            cq.tail = 0
            cq.phase ^= 1
        if cq.irq_enabled and self.irq is not None:
            self.irq(cq.vector)

    # -------------------------------------------- queue management (admin helpers)
    def create_cq(self, qid, base, size, irq_enabled, vector):
        if qid == 0 or qid > self.num_queues[1] or qid in self.cqs:
            raise CommandError(Status.INVALID_QID | Status.DNR, f"bad CQ id {qid}")
        if size < 2 or size > MQES + 1:
            raise CommandError(Status.INVALID_QSIZE | Status.DNR, f"bad CQ size {size}")
        self._check_ring(base, size * CQE_SIZE)
        self.cqs[qid] = CompletionQueue(qid, base, size, irq_enabled, vector, ram=self._ram)

    def create_sq(self, qid, base, size, cqid):
        if qid == 0 or qid > self.num_queues[0] or qid in self.sqs:
            raise CommandError(Status.INVALID_QID | Status.DNR, f"bad SQ id {qid}")
        if cqid not in self.cqs or cqid == 0:
            raise CommandError(Status.INVALID_CQ | Status.DNR, f"SQ {qid} names missing CQ {cqid}")
        if size < 2 or size > MQES + 1:
            raise CommandError(Status.INVALID_QSIZE | Status.DNR, f"bad SQ size {size}")
        self._check_ring(base, size * SQE_SIZE)
        self.sqs[qid] = SubmissionQueue(qid, base, size, cqid, ram=self._ram)
        self.cqs[cqid].sqs.add(qid)

    def delete_sq(self, qid):
        sq = self.sqs.get(qid)
        if qid == 0 or sq is None:
            raise CommandError(Status.INVALID_QID | Status.DNR, f"no SQ {qid}")
        del self.sqs[qid]
        self.cqs[sq.cqid].sqs.discard(qid)

    def delete_cq(self, qid):
        cq = self.cqs.get(qid)
        if qid == 0 or cq is None:
            raise CommandError(Status.INVALID_QID | Status.DNR, f"no CQ {qid}")
        if cq.sqs:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"CQ {qid} still has SQs")
        del self.cqs[qid]

    def _check_ring(self, base, nbytes):
        if base % PAGE_SIZE:
            raise CommandError(Status.PRP_OFFSET_INVALID | Status.DNR, "queue base not page aligned")
        try:
            self.dma.check(base, nbytes)
        except Exception as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None


