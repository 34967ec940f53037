"""The per-command debug trace of ox-ctrl (SPEC 7), one block per command."""
import sys


class Tracer:
    """Writes trace lines when debug > 0; every method is a no-op target otherwise."""

    def __init__(self, stream=None):
        self.out = stream or sys.stderr

    def _w(self, line: str) -> None:
        self.out.write(line + "\n")

    def io_cmd(self, seq, cmd, nsectors, data_nbytes, meta_nbytes, ppas, prps, meta_prps):
        w = self._w
        w(f"[{seq}] IO CMD 0x{cmd.opcode:02x}, nsid: {cmd.nsid}, cid: {cmd.cid}")
        w(f" Number of sectors: {nsectors}")
        w(f" DMA size: {data_nbytes} (data) + {meta_nbytes} (meta) = {data_nbytes + meta_nbytes} bytes")
        for i, (ch, lun, blk, pl, pg, sec) in enumerate(ppas):
            w(f" [ppa({i}): ch: {ch}, lun: {lun}, blk: {blk}, pl: {pl}, pg: {pg}, sec: {sec}]")
        for i, a in enumerate(prps):
            w(f" [prp({i}): 0x{a:016x}")
        for i, a in enumerate(meta_prps):
            w(f" [meta_prp({i}): 0x{a:016x}")

    def ftl_submit(self, cmd, mtype, channel, queue=0):
        self._w(f" CMD cid: {cmd.cid}, type: 0x{mtype:x} submitted to FTL. ")
        self._w(f"  Channel: {channel}, FTL queue {queue}")

    def mmgr_submit(self, mtype, ch, lun, blk, pl, pg):
        self._w(f" MMGR_CMD type: 0x{mtype:x} submitted to VOLT.")
        self._w(f"  Channel: {ch}, lun: {lun}, blk: {blk}, pl: {pl}, pg: {pg}]")

    def mmgr_callback(self, mtype, ch, lun, blk, pl, pg):
        self._w(f" [IO CALLBK. CMD 0x{mtype:x}. mmgr_ch: {ch}, lun: {lun}, blk: {blk}, pl: {pl}, pg: {pg}]")

    def completed(self, cmd, status):
        self._w(f" [NVMe cmd 0x{cmd.opcode:02x}. cid: {cmd.cid} completed. Status: {status:x}]")
        self.out.flush()

    def admin_cmd(self, seq, cmd, status):
        self._w(f"[{seq}] ADMIN CMD 0x{cmd.opcode:02x}, cid: {cmd.cid}. Status: {status:x}")
