"""Finished runs of a sweep, kept on disk: a sweep that is stopped and started again, or
grown by one more value, runs only the (point, stack) runs it lacks.

A run is keyed by everything its modeled figures depend on: the whole configuration
(geometry included), the stack mode and, for a plug-in FTL, the bytes of its file; the
workload (every field; a fio job's parsed jobs, a trace's requests); the queue depth;
the seed; and the code version -- a digest of every source file of oxemu, oxhost and
oxftl plus the Python and numpy versions. Any change to any of them is another key, so a
cached run is always one this code would compute again, bit for bit.

Entries are JSON files under the cache directory, one per run, written whole (a
temporary file renamed over), so a sweep killed mid-write leaves no half entry; an entry
that cannot be read is computed again."""
from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib.util
import json
import logging
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_PACKAGES = ("oxemu", "oxhost", "oxftl")
FORMAT = 1                      # of an entry; another format is another key


@functools.cache
def code_version() -> str:
    """A digest of the simulator's code: every .py file of oxemu, oxhost and oxftl (path
    and bytes), the Python and numpy versions. Equal on two machines when they would
    compute the same figures."""
    h = hashlib.sha256(f"python {platform.python_version()} numpy {np.__version__}\n".encode())
    for pkg in _PACKAGES:
        spec = importlib.util.find_spec(pkg)
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root.parent).as_posix()
            if "__pycache__" in rel:
                continue
            h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:20]


def ftl_source(mode: str) -> str | None:
    """A digest of the file a plug-in FTL's mode names (FILE.py:Class, or a module outside
    the simulator's packages), None for the built-in stacks and FTLs the code version
    already covers."""
    from ..stack import parse_mode
    m = parse_mode(mode)
    if m.ftl is None:
        return None
    where = m.ftl.rpartition(":")[0]
    if where.endswith(".py") or os.sep in where:
        path = where
    else:
        if where.split(".")[0] in _PACKAGES:
            return None
        spec = importlib.util.find_spec(where)
        path = spec.origin if spec is not None else None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20] if path else None
    except OSError:
        return None


def canonical(obj):
    """`obj` as plain JSON data with a stable form: dataclasses and objects by their
    fields (with their type's name), arrays by dtype, shape and a digest of their bytes,
    mappings with sorted keys."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return canonical(obj.value)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return repr(float(obj))
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {"array": a.dtype.str, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    if isinstance(obj, (bytes, bytearray)):
        return {"bytes": hashlib.sha256(obj).hexdigest()}
    if isinstance(obj, dict):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((canonical(v) for v in obj), key=repr)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {"type": type(obj).__name__, **canonical(fields)}
    if hasattr(obj, "__dict__"):
        return {"type": type(obj).__name__, **canonical(vars(obj))}
    if hasattr(obj, "__slots__"):
        return {"type": type(obj).__name__,
                **canonical({s: getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s)})}
    return repr(obj)


def run_key(config: dict, mode: str, workload, qd: int, seed: int) -> str:
    """The key of one run (see the module's docstring)."""
    what = dict(format=FORMAT, code=code_version(), config=config, mode=mode, ftl_source=ftl_source(mode),
                workload=canonical(workload), qd=int(qd), seed=int(seed))
    return hashlib.sha256(json.dumps(canonical(what), sort_keys=True).encode()).hexdigest()[:32]


class RunCache:
    """Finished runs under `root` (created on the first entry written)."""

    def __init__(self, root):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored result of the run `key`, or None (never written, or unreadable)."""
        path = self._path(key)
        try:
            with open(path) as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("sweep cache: %s is unreadable (%s); computing that run again", path, e)
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or "result" not in entry:
            log.warning("sweep cache: %s is not an entry of this key; computing that run again", path)
            return None
        return entry["result"]

    def put(self, key: str, result: dict, about: dict | None = None) -> None:
        """Store a run's result whole (JSON-able), with `about`: what it is, for people."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(dict(key=key, about=about or {}, result=result), f)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0
