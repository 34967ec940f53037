"""Admin command set (SPEC 5): queues, identify, features, log pages (error, SMART with
lifetime counters, firmware slot, and OX's media label 0xC0), OX's idle hint 0xC2; the
device mode adds its own commands (open-channel: LightNVM identity 0xE2, bad block table
0xF1/0xF2, OX set target 0xC1) and log pages (AppNVM: its FTL log 0xC1)."""
import struct

import numpy as np

from ..wire import (CSI_NVM, PAGE_SIZE, AdminOpc, Cns, CriticalWarning, ErrorLogEntry, FeatureId, IdCtrl, LogPage,
                    NsIdDescType, SmartLog, Status)
from .controller import MAX_QUEUES
from .prp import Transfer


class AdminCommands:
    """Dispatches admin opcodes: the common set, then the device mode's own."""

    def __init__(self, ctrl_ref, mode, identify_ctrl: bytes, volt):
        self._ctrl = ctrl_ref          # callable returning the Controller (built after us)
        self.mode = mode
        self.volt = volt               # the media: label, read-only
        self.identify_ctrl = identify_ctrl
        vwc = IdCtrl.from_buffer_copy(identify_ctrl).vwc & 1       # cache on when present
        self.features = {FeatureId.ARBITRATION: 0, FeatureId.POWER_MGMT: 0,
                         FeatureId.TEMP_THRESH: 0x0157, FeatureId.ERR_RECOVERY: 0,
                         FeatureId.VOLATILE_WC: vwc, FeatureId.IRQ_COALESCE: 0,
                         FeatureId.ASYNC_EVENT: 0}
        self._table = {
            AdminOpc.DELETE_SQ: self.delete_sq,
            AdminOpc.CREATE_SQ: self.create_sq,
            AdminOpc.GET_LOG_PAGE: self.get_log_page,
            AdminOpc.DELETE_CQ: self.delete_cq,
            AdminOpc.CREATE_CQ: self.create_cq,
            AdminOpc.IDENTIFY: self.identify,
            AdminOpc.ABORT: self.abort,
            AdminOpc.SET_FEATURES: self.set_features,
            AdminOpc.GET_FEATURES: self.get_features,
            AdminOpc.OX_IDLE: self.idle,
            **mode.admin_commands(),
        }
        self._logs = mode.log_pages()

    def execute(self, cmd):
        handler = self._table.get(cmd.opcode)
        if handler is None:
            return Status.INVALID_OPCODE | Status.DNR, 0
        return handler(cmd)

    def _send(self, cmd, data: bytes):
        """Copy a data structure to the host buffer named by PRP1/PRP2."""
        Transfer(self._ctrl().dma, cmd.prp1, cmd.prp2, len(data)).write(
            np.frombuffer(data, dtype=np.uint8))
        return Status.SUCCESS, 0

    # queues --------------------------------------------------------------
    def create_cq(self, cmd):
        qid, qsize = cmd.cdw10 & 0xFFFF, (cmd.cdw10 >> 16) + 1
        if not cmd.cdw11 & 1:
            return Status.INVALID_FIELD | Status.DNR, 0      # only contiguous queues
        self._ctrl().create_cq(qid, cmd.prp1, qsize, bool(cmd.cdw11 & 2), cmd.cdw11 >> 16)
        return Status.SUCCESS, 0

    def create_sq(self, cmd):
        qid, qsize = cmd.cdw10 & 0xFFFF, (cmd.cdw10 >> 16) + 1
        if not cmd.cdw11 & 1:
            return Status.INVALID_FIELD | Status.DNR, 0
        self._ctrl().create_sq(qid, cmd.prp1, qsize, cmd.cdw11 >> 16)
        return Status.SUCCESS, 0

    def delete_sq(self, cmd):
        self._ctrl().delete_sq(cmd.cdw10 & 0xFFFF)
        return Status.SUCCESS, 0

    def delete_cq(self, cmd):
        self._ctrl().delete_cq(cmd.cdw10 & 0xFFFF)
        return Status.SUCCESS, 0

    def idle(self, cmd):
        """OX vendor 0xC2: the host has been idle; the mode may do a slice of background
        work (GC). Result 1: more is pending."""
        return Status.SUCCESS, int(bool(self.mode.idle()))

    def abort(self, cmd):
        return Status.SUCCESS, 1        # bit 0 set: command not aborted (all run to completion)

    # identify / features / logs -----------------------------------------
    def identify(self, cmd):
        cns = cmd.cdw10 & 0xFF
        if cns == Cns.CONTROLLER:
            return self._send(cmd, self.identify_ctrl)
        if cns == Cns.NAMESPACE:
            if cmd.nsid != 1:
                return Status.INVALID_NS | Status.DNR, 0
            return self._send(cmd, self.mode.identify_namespace())
        if cns == Cns.NS_ACTIVE_LIST:
            data = bytearray(PAGE_SIZE)
            if cmd.nsid < 1:
                struct.pack_into("<I", data, 0, 1)
            return self._send(cmd, bytes(data))
        if cns in (Cns.NS_ID_DESCRIPTORS, Cns.CS_NAMESPACE) and cmd.nsid != 1:
            return Status.INVALID_NS | Status.DNR, 0
        if cns == Cns.NS_ID_DESCRIPTORS:                   # the command set identifier descriptor
            data = bytearray(PAGE_SIZE)
            data[0:5] = bytes((NsIdDescType.CSI, 1, 0, 0, self.mode.csi))
            return self._send(cmd, bytes(data))
        if cns in (Cns.CS_NAMESPACE, Cns.CS_CONTROLLER):
            csi = (cmd.cdw11 >> 24) & 0xFF
            data = bytes(PAGE_SIZE) if csi == CSI_NVM else self.mode.identify_cs(cns, csi)
            if data is None:
                return Status.INVALID_FIELD | Status.DNR, 0
            return self._send(cmd, data)
        return Status.INVALID_FIELD | Status.DNR, 0

    def set_features(self, cmd):
        fid = cmd.cdw10 & 0xFF
        if cmd.cdw10 >> 31:
            return Status.FEATURE_NOT_SAVEABLE | Status.DNR, 0
        if fid == FeatureId.NUM_QUEUES:
            nsq, ncq = (cmd.cdw11 & 0xFFFF) + 1, (cmd.cdw11 >> 16) + 1
            if nsq > 0xFFFF or ncq > 0xFFFF:
                return Status.INVALID_FIELD | Status.DNR, 0
            ctrl = self._ctrl()
            ctrl.num_queues = (min(nsq, MAX_QUEUES), min(ncq, MAX_QUEUES))
            return Status.SUCCESS, (ctrl.num_queues[0] - 1) | ((ctrl.num_queues[1] - 1) << 16)
        if fid not in self.features:
            return Status.INVALID_FIELD | Status.DNR, 0
        self.features[fid] = cmd.cdw11
        return Status.SUCCESS, 0

    def get_features(self, cmd):
        fid = cmd.cdw10 & 0xFF
        if fid == FeatureId.NUM_QUEUES:
            nsq, ncq = self._ctrl().num_queues
            return Status.SUCCESS, (nsq - 1) | ((ncq - 1) << 16)
        if fid not in self.features:
            return Status.INVALID_FIELD | Status.DNR, 0
        return Status.SUCCESS, self.features[fid]

    def get_log_page(self, cmd):
        lid = cmd.cdw10 & 0xFF
        numd = ((cmd.cdw10 >> 16) & 0xFFF) + 1
        nbytes = numd * 4
        ctrl = self._ctrl()
        if lid == LogPage.ERROR:
            ents = (ErrorLogEntry * 64)()
            for e, (count, sqid, cid, status) in zip(ents, reversed(ctrl.error_log)):
                e.error_count, e.sqid, e.cmdid, e.status_field = count, sqid, cid, status << 1
            data = bytes(ents)
        elif lid == LogPage.SMART:
            data = bytes(self.smart_log(ctrl))
        elif lid == LogPage.OX_MEDIA_LABEL:
            data = bytes(self.volt.label())
        elif lid in self._logs:
            data = self._logs[lid]()
        elif lid == LogPage.FW_SLOT:
            data = bytearray(512)
            data[0] = 1
            data[8:16] = self.identify_ctrl[64:72]
        else:
            return Status.INVALID_LOG_PAGE | Status.DNR, 0
        data = bytes(data[:nbytes]).ljust(nbytes, b"\0")
        return self._send(cmd, data)

    def smart_log(self, ctrl) -> SmartLog:
        """SMART / health log: the media label's lifetime counters, live. The read-only
        warning means the device placed the media in read-only mode (spares used up),
        not that this session opened the disk file read-only."""
        lab = self.volt.label()
        s = SmartLog()
        placed = lab.read_only or (not self.volt.store.readonly and (self.volt.read_only or self.mode.read_only))
        if placed:
            s.critical_warning = CriticalWarning.READ_ONLY
        s.temperature = 273 + 40                                     # composite temperature, K
        s.avail_spare, s.spare_thresh, s.percent_used = 100, 10, 0
        s.data_units_read[0] = lab.data_units_read
        s.data_units_written[0] = lab.data_units_written
        s.host_reads[0] = lab.host_read_cmds
        s.host_writes[0] = lab.host_write_cmds
        s.power_cycles[0] = lab.power_cycles
        s.unsafe_shutdowns[0] = lab.unsafe_shutdowns
        s.media_errors[0] = lab.media_errors
        s.num_err_log_entries[0] = ctrl.counters["errors"]
        return s
