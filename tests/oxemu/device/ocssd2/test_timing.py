"""The 2.0 device on the timing model: a vector write charges each ws_min unit as a
multi-plane program, and the PUs of one group share its channel without queueing
behind one another's programs."""
import numpy as np

from oxhost.lightnvm2 import Device20

from .conftest import chunk_lbas, oob, pattern


def test_ws_opt_units_on_two_pus_of_a_group_program_in_parallel(make_machine):
    m = make_machine(spec="2.0", timing="model")
    dev = Device20.open(m)
    g = dev.geo
    lbas = np.concatenate([chunk_lbas(dev, 0, p, 0, 0, g.ws_opt) for p in (0, 1)])
    assert g.ws_opt == 2 * g.ws_min
    t0 = 10_000_000
    m.issue_at(t0)
    dev.write(lbas, pattern(lbas), meta=oob(lbas))
    nand = m.device.volt.timing.nand
    x, p = nand.transfer_ns(g.ws_min * g.nbytes), nand.t_prog_ns
    # PU 1's first unit goes over the channel while PU 0 programs its first: both PUs end
    # their second unit one transfer apart, not one after the other (4 x + 3 p)
    assert m.virtual_ns - t0 == 3 * x + 2 * p
