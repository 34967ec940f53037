"""What each media operation of a torture workload was: its kind (erase, program, read)
and what the FTL was doing when it issued it (user data, GC, smeta/emeta, checkpoint,
trim journal, recovery, shutdown, ...) -- so `ox torture --exhaustive` can say which
kinds of operation its cuts fell on.

A lab instrument, not an interface: VOLT tells the recorder of every batch of media
operations before it runs them (oxemu.Faults.observer), and the recorder looks up the
Python call stack -- the host stack, the driver, the emulated controller and the FTL all
run in this one thread -- for the innermost function it knows. The rules name functions
of pblk (oxhost/pblk) and of the AppNVM FTL (oxemu/device/appnvm); a rename shows up as
"other" in the report (and fails the test that runs the recorder), never as a wrong label.
A plug-in FTL's operations are labelled with its innermost method (e.g. PageFtl._collect).
"""
import sys
from collections import Counter

# pblk's sector kinds (oxhost.pblk.metadata.Kind) as the writer's OOB carries them
_PBLK_KINDS = {1: "user", 2: "GC", 3: "pad", 4: "meta", 5: "trim"}
# AppNVM's streams and unit kinds (its own media format, seen here only as numbers)
_APPNVM_STREAMS = {0: "user data", 1: "GC data", 2: "metadata"}
_APPNVM_META = {2: "checkpoint", 3: "trim journal"}


def _pblk_units(frame) -> str:
    kinds = frame.f_locals.get("kinds")
    if kinds is None:
        return "data"
    names = [_PBLK_KINDS.get(int(k), "?") for k in sorted(set(kinds.tolist()))]
    return "+".join(names) + " data"


def _appnvm_units(frame) -> str:
    stream = int(frame.f_locals.get("stream", -1))
    if stream == 2:
        return _APPNVM_META.get(int(frame.f_locals.get("kind", 0)), "metadata")
    return _APPNVM_STREAMS.get(stream, "data")


# (file suffix, function names or None for any, activity or a function of the frame);
# the innermost frame that matches names the activity
_ACTIVITY = (
    ("pblk/writer.py", {"_write_smeta"}, "smeta"),
    ("pblk/writer.py", {"close_line"}, "emeta"),
    ("pblk/writer.py", {"_write_units"}, _pblk_units),
    ("pblk/recovery.py", {"_pad"}, "pad of a partly written line"),
    ("pblk/recovery.py", {"_read_smetas"}, "smeta read"),
    ("pblk/recovery.py", {"_read_emeta"}, "emeta read"),
    ("pblk/recovery.py", {"_scan", "_read_trims"}, "OOB scan"),
    ("pblk/lines.py", {"erase"}, "line erase"),
    ("pblk/gc.py", None, "GC"),
    ("pblk/core.py", {"read_into", "_read_media"}, "host read"),
    ("appnvm/ftl.py", {"program_units"}, _appnvm_units),
    ("appnvm/blocks.py", {"erase"}, "block erase"),
    ("appnvm/gc.py", None, "GC"),
    ("appnvm/checkpoint.py", None, "checkpoint"),
    ("appnvm/recovery.py", None, "scan"),
    ("appnvm/ftl.py", {"_read", "_read_media", "_read_runs"}, "host read"),
)
# what the stack as a whole was doing: the outermost frame that matches
_PHASE = (
    ("pblk/recovery.py", None, "recovery"),
    ("appnvm/recovery.py", None, "recovery"),
    ("appnvm/ftl.py", {"_start"}, "recovery"),
    ("appnvm/ftl.py", {"shutdown"}, "shutdown"),
    ("oxhost/stack.py", {"close"}, "shutdown"),
)


def _match(rules, frame):
    code = frame.f_code
    for suffix, names, what in rules:
        if code.co_filename.endswith(suffix) and (names is None or code.co_name in names):
            return what
    return None


def _plugin(frame) -> str | None:
    """A plug-in FTL's (the FTL API's) method the operation came from: 'Class.method'."""
    from oxftl import Ftl
    me = frame.f_locals.get("self")
    return f"{type(me).__name__}.{frame.f_code.co_name}" if isinstance(me, Ftl) else None


def classify(frame) -> str:
    """'<op kind>: <activity>[ (<phase>)]' for a media operation issued below `frame`; for
    a plug-in FTL the activity is its innermost method on the stack."""
    activity = phase = None
    f = frame
    while f is not None:
        if activity is None:
            what = _match(_ACTIVITY, f) or _plugin(f)
            if what is not None:
                activity = what(f) if callable(what) else what
        ph = _match(_PHASE, f)
        if ph is not None:
            phase = ph
        f = f.f_back
    out = activity or "other"
    return f"{out} ({phase})" if phase and phase not in out else out


class OpRecorder:
    """A Faults observer: the label of every media operation from `first` on, numbered as
    the observer is told (a torture Session numbers them from its zero), and the request
    of the workload (`request()`) that issued it."""

    def __init__(self, request, limit: int):
        self._request = request
        self.limit = limit                   # operations worth recording
        self.labels: list[str] = []          # per operation, from 0
        self.requests: list[int] = []

    def __call__(self, op: str, first: int, count: int) -> None:
        end = min(first + count, self.limit)
        if end <= max(first, 0) or len(self.labels) >= self.limit:
            return
        label = f"{op}: {classify(sys._getframe(1))}"
        req = self._request()
        start = max(first, 0)
        if start > len(self.labels):         # operations the recorder did not hear of
            gap = start - len(self.labels)
            self.labels.extend(["unknown"] * gap)
            self.requests.extend([-1] * gap)
        n = end - len(self.labels)
        self.labels.extend([label] * n)
        self.requests.extend([req] * n)

    def kinds(self, ops=None) -> Counter:
        """How many of the operations (indices; default all) had each label."""
        if ops is None:
            return Counter(self.labels)
        return Counter(self.labels[i] for i in ops if i < len(self.labels))
