"""NAND timing model on a virtual nanosecond clock (SPEC 8).

Busy-until stamps per LUN; a media operation starts when its LUN is free. A channel is
booked by the intervals of its transfers: a transfer takes the earliest gap long enough
from when its data (or its LUN) is ready, so a program that must wait for its busy LUN
does not hold the channel idle for the transfers to other LUNs queued behind it (a
controller queues per LUN; a vector command naming two units of one LUN in a row would
otherwise serialise every LUN of the channel behind it). Nothing here reads the wall
clock except the realtime mode's wait.
"""
import bisect
import enum
import time
from dataclasses import dataclass


class TimingMode(str, enum.Enum):
    OFF = "off"             # no model: every operation completes at once (mounting)
    MODEL = "model"         # modeled completion times recorded, no sleeping
    REALTIME = "realtime"   # completions delayed to match the model


class MediaOp(enum.IntEnum):
    READ = 1
    PROGRAM = 2
    ERASE = 3


@dataclass(frozen=True)
class NandTiming:
    """Defaults in the range peers use (FEMU: 40 us / 200 us / 2 ms; 800 MB/s channel).

    MLC-like page types (optional): the *_lsb_ns / *_msb_ns times apply to LSB (even page
    numbers) and MSB (odd page numbers) pages, FEMU's simple pairing; 0 means the plain
    time. The plain and max values are what the LightNVM identity reports."""
    t_read_ns: int = 40_000
    t_read_max_ns: int = 60_000
    t_prog_ns: int = 200_000
    t_prog_max_ns: int = 300_000
    t_erase_ns: int = 2_000_000
    t_erase_max_ns: int = 3_000_000
    channel_bytes_per_s: int = 800_000_000
    t_read_lsb_ns: int = 0
    t_read_msb_ns: int = 0
    t_prog_lsb_ns: int = 0
    t_prog_msb_ns: int = 0

    @property
    def paged(self) -> bool:
        """Whether LSB and MSB pages have times of their own."""
        return bool(self.t_read_lsb_ns or self.t_read_msb_ns or self.t_prog_lsb_ns or self.t_prog_msb_ns)

    def read_ns(self, pg: int) -> int:
        """Sense time of page `pg` of a block."""
        t = self.t_read_msb_ns if pg & 1 else self.t_read_lsb_ns
        return t or self.t_read_ns

    def prog_ns(self, pg: int) -> int:
        """Program time of page `pg` of a block."""
        t = self.t_prog_msb_ns if pg & 1 else self.t_prog_lsb_ns
        return t or self.t_prog_ns

    def transfer_ns(self, nbytes: int) -> int:
        return nbytes * 1_000_000_000 // self.channel_bytes_per_s


CHANNEL_BOOKINGS = 64      # transfers a channel remembers; the time before them counts as busy


class TimingModel:
    """The virtual clock, the LUNs' busy-until stamps and the channels' bookings. `now_ns`
    is the arrival time of the next command the controller runs; it moves forward to each
    batch's last completion, or to wherever a lab harness puts it (`set_arrival`)."""

    def __init__(self, nchannels: int, nluns: int, mode: TimingMode = TimingMode.OFF,
                 nand: NandTiming = NandTiming()):
        self.mode = TimingMode(mode)
        self.enabled = self.mode is not TimingMode.OFF
        self.nand = nand
        self._paged = nand.paged
        self.now_ns = 0
        self._lun_busy = [[0] * nluns for _ in range(nchannels)]      # plain ints: charged per command
        self._chan_booked: list[list[tuple[int, int]]] = [[] for _ in range(nchannels)]   # (start, end), in order
        self._chan_floor = [0] * nchannels                             # busy before this (bookings forgotten)
        self._wall_anchor = time.monotonic_ns()

    def charge(self, op: MediaOp, ch: int, lun: int, nbytes: int, arrival_ns: int, pg: int = 0) -> int:
        """Occupy the LUN/channel for one (multi-plane) operation on page `pg` (its type
        matters only with LSB/MSB times); return its end time."""
        if not self.enabled:
            return arrival_ns
        nand = self.nand
        busy = self._lun_busy[ch]
        lun_free = busy[lun]
        start = arrival_ns if arrival_ns > lun_free else lun_free
        if op == MediaOp.ERASE:
            end = busy[lun] = start + nand.t_erase_ns
            return end
        xfer = nand.transfer_ns(nbytes)
        if op == MediaOp.READ:
            sensed = start + (nand.read_ns(pg) if self._paged else nand.t_read_ns)
            end = busy[lun] = self._book(ch, sensed, xfer) + xfer
            return end
        end = busy[lun] = (self._book(ch, start, xfer) + xfer
                           + (nand.prog_ns(pg) if self._paged else nand.t_prog_ns))
        return end

    def _book(self, ch: int, t: int, xfer: int) -> int:
        """Book the channel for a transfer of `xfer` ns ready at `t`: its start, the
        earliest at or after t that overlaps no booked transfer."""
        booked = self._chan_booked[ch]
        floor = self._chan_floor[ch]
        if t < floor:
            t = floor
        if not booked or booked[-1][1] <= t:   # after every booking: the usual case
            i = len(booked)
        else:
            i = bisect.bisect_right(booked, (t, t))
            if i and booked[i - 1][1] > t:      # the booking before t still runs at t
                i -= 1
            for s, e in booked[i:]:
                if t + xfer <= s:
                    break
                t = max(t, e)
                i += 1
        if xfer:
            booked.insert(i, (t, t + xfer))
            if len(booked) > CHANNEL_BOOKINGS:
                self._chan_floor[ch] = max(self._chan_floor[ch], booked.pop(0)[1])
        return t

    def advance(self, t_ns: int) -> None:
        if t_ns > self.now_ns:
            self.now_ns = t_ns

    def set_arrival(self, t_ns: int) -> None:
        """Lab instrument: the next commands arrive at `t_ns`, even when that is earlier
        than the last completion (another job's request issued meanwhile). The busy-until
        stamps and bookings stay, so a LUN or channel still busy delays them as it should."""
        self.now_ns = int(t_ns)

    def wait_until(self, t_ns: int) -> None:
        """Realtime mode: hold the completion until the modeled time has passed."""
        if self.mode is not TimingMode.REALTIME:
            return
        delay = self._wall_anchor + t_ns - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        else:                               # fell behind: re-anchor, do not accumulate debt
            self._wall_anchor -= delay
