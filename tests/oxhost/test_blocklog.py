"""oxhost.blocklog: the block log the FUSE daemon writes (`ox mount --write-log`), a
neutral module that both the FUSE edge and `ox torture` import."""
import ast
import subprocess
import sys
from pathlib import Path

from oxhost.blocklog import BACKGROUND, FAILED, FLUSH, READ, REC, WRITE, ZERO, BlockLog


def test_blocklog_appends_one_record_per_event_with_the_bytes_of_writes(tmp_path):
    path = tmp_path / "w.log"
    log = BlockLog(str(path))
    log.write(8192, b"\x07" * 1024)
    log.zero(0, 4096)
    log.failed()
    log.read(4096, 512)
    log.background()
    log.flush()
    log.close()
    buf = path.read_bytes()
    got, i = [], 0
    while i < len(buf):
        op, off, n = REC.unpack_from(buf, i)
        i += REC.size
        body = buf[i:i + n] if op == WRITE else b""
        i += len(body)
        got.append((op, off, n, body))
    assert got == [(WRITE, 8192, 1024, b"\x07" * 1024), (ZERO, 0, 4096, b""), (FAILED, 0, 0, b""),
                   (READ, 4096, 512, b""), (BACKGROUND, 0, 0, b""), (FLUSH, 0, 0, b"")]


def test_the_fuse_edge_does_not_import_the_torture_package():
    """Not at import time, and not in a function either (the daemon used to reach into
    oxhost.torture for the writer of --write-log)."""
    import oxhost.fuse
    pkg = Path(oxhost.fuse.__file__).parent
    for src in sorted(pkg.glob("*.py")):
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
                names += [f"{names[0]}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("torture" in n for n in names), f"{src.name}:{node.lineno} imports {names}"
    code = "import sys, oxhost.fuse.daemon; print(sorted(m for m in sys.modules if 'torture' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
