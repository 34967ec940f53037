"""Admin command set (SPEC 5): queues, identify, features, log pages, and the
LightNVM vendor commands (identity 0xE2, bad block table 0xF1/0xF2)."""
import struct

import numpy as np

from ..wire import PAGE_SIZE, AdminOpc, Cns, FeatureId, IdCtrl, LogPage, NvmOpc, Status
from .controller import MAX_QUEUES
from .prp import Transfer


class AdminCommands:
    """Dispatches admin opcodes; the device mode adds its own through `ops.admin_extra`."""

    def __init__(self, ctrl_ref, ops, identify_ctrl: bytes):
        self._ctrl = ctrl_ref          # callable returning the Controller (built after us)
        self.ops = ops
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
        }

    def execute(self, cmd):
        handler = self._table.get(cmd.opcode) or self.ops.admin_extra(cmd.opcode)
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
            return self._send(cmd, self.ops.identify_namespace())
        if cns == Cns.NS_ACTIVE_LIST:
            data = bytearray(PAGE_SIZE)
            if cmd.nsid < 1:
                struct.pack_into("<I", data, 0, 1)
            return self._send(cmd, bytes(data))
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
            data = bytearray(64 * 64)
            for i, (count, sqid, cid, status) in enumerate(reversed(ctrl.error_log)):
                struct.pack_into("<QHHH", data, i * 64, count, sqid, cid, status << 1)
        elif lid == LogPage.SMART:
            data = bytearray(512)
            units = 512 * 1000                                       # data units of 1000 sectors
            struct.pack_into("<B", data, 0, 0)                       # critical warning
            struct.pack_into("<H", data, 1, 273 + 40)                # composite temp, K
            struct.pack_into("<BBB", data, 3, 100, 10, 0)            # spare, threshold, used
            struct.pack_into("<QQ", data, 32, -(-self.ops.bytes_read // units), 0)
            struct.pack_into("<QQ", data, 48, -(-self.ops.bytes_written // units), 0)
            ops = ctrl.opcodes
            struct.pack_into("<QQ", data, 64, ops[NvmOpc.READ] + ops[NvmOpc.PH_READ], 0)
            struct.pack_into("<QQ", data, 80, ops[NvmOpc.WRITE] + ops[NvmOpc.PH_WRITE], 0)
            struct.pack_into("<QQ", data, 176, ctrl.counters["errors"], 0)
        elif lid == LogPage.FW_SLOT:
            data = bytearray(512)
            data[0] = 1
            data[8:16] = self.identify_ctrl[64:72]
        else:
            return Status.INVALID_LOG_PAGE | Status.DNR, 0
        data = bytes(data[:nbytes]).ljust(nbytes, b"\0")
        return self._send(cmd, data)
