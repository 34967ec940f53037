"""One submission queue entry, decoded once (NVMe 1.2 figure 11 / nvme_nvm_ph_rw)."""
from ..wire import SQE


class Command:
    __slots__ = ("opcode", "flags", "cid", "nsid", "cdw2", "cdw3", "mptr", "prp1", "prp2",
                 "cdw10", "cdw11", "cdw12", "cdw13", "cdw14", "cdw15", "sqid", "seq")

    @classmethod
    def unpack(cls, buf, offset: int, sqid: int, seq: int) -> "Command":
        c = cls.__new__(cls)
        (c.opcode, c.flags, c.cid, c.nsid, c.cdw2, c.cdw3, c.mptr, c.prp1, c.prp2,
         c.cdw10, c.cdw11, c.cdw12, c.cdw13, c.cdw14, c.cdw15) = SQE.unpack_from(buf, offset)
        c.sqid = sqid
        c.seq = seq
        return c

    # open-channel overlay of cdw10..cdw12
    @property
    def spba(self) -> int:
        return self.cdw10 | (self.cdw11 << 32)

    @property
    def nlb(self) -> int:
        return self.cdw12 & 0xFFFF

    @property
    def control(self) -> int:
        return self.cdw12 >> 16
