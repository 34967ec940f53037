"""Bad block tables (liblightnvm nvm_bbt): one per LUN, a state byte per block-plane."""
from dataclasses import dataclass

import numpy as np

from oxemu.wire import BlockState

from .addr import Addr


@dataclass
class BbTable:
    """A LUN's table. `blks[blk * nplanes + pl]` holds a BlockState value."""
    addr: Addr
    blks: np.ndarray
    nplanes: int
    tfact: int = 0
    tgrown: int = 0
    tdresv: int = 0
    thresv: int = 0

    def state(self, blk: int, pl: int = 0) -> int:
        return int(self.blks[blk * self.nplanes + pl])

    def is_bad(self, blk: int) -> bool:
        """A block is unusable when any of its planes is bad or grown-bad."""
        s = self.blks[blk * self.nplanes:(blk + 1) * self.nplanes]
        return bool(np.any((s == BlockState.BAD) | (s == BlockState.GRWN_BAD)))

    def pr(self) -> str:
        lines = [f"nvm_bbt: ch({self.addr.ch}) lun({self.addr.lun}) nblks({self.blks.size}) "
                 f"nbad({self.tfact}) ngbad({self.tgrown}) ndmrk({self.tdresv}) nhmrk({self.thresv})"]
        for i in np.flatnonzero(self.blks):
            blk, pl = divmod(int(i), self.nplanes)
            lines.append(f"  blk({blk:04d}) pl({pl}) state({BlockState(int(self.blks[i])).name})")
        return "\n".join(lines)
