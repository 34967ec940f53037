"""`ox compare --fio-job` and `--trace`: users' workloads run on both stacks, every read
checked against what was written; and bad configurations are one error line each."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxhost.cli import main
from oxhost.compare.traces import detect_format, load_trace

MAKE_TRACES = Path(__file__).resolve().parents[3] / "scripts" / "make_traces.py"
TINY = ["--quick", "--no-progress", "--set", "geometry.nblocks=16", "--set", "geometry.npages=16"]

JOB = """
[global]
bs=4k
size=16m
randrepeat=1
[mix]
rw=randrw
rwmixread=70
bssplit=4k/60:16k/30:64k/10
iodepth=8
numjobs=2
io_size=2m
random_distribution=zipf:1.1
[seq]
rw=write
bs=128k
offset=16m
size=4m
iodepth=2
[reader]
rw=randread
offset=16m
size=4m
iodepth=4
runtime=20ms
time_based
"""


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    subprocess.run([sys.executable, str(MAKE_TRACES), str(d), "--requests", "400", "--region-mib", "16"],
                   check=True, capture_output=True)
    return d


def _run(tmp_path, *args):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["compare", *TINY, "--out", str(out), *args])
    assert res.exit_code == 0, res.output
    return json.loads((out / "results.json").read_text()), (out / "report.md").read_text()


def test_fio_job_file_runs_every_job_and_verifies_every_read(tmp_path):
    job = tmp_path / "mix.fio"
    job.write_text(JOB)
    results, md = _run(tmp_path, "--fio-job", str(job))
    assert list(results["workloads"]) == ["mix"]
    assert results["workloads"]["mix"]["qds"] == [8]
    for stack in ("pblk", "appnvm"):
        r = results["stacks"][stack]["mix"]["8"]
        assert r["mismatches"] == 0
        jobs = r["jobs"]
        assert set(jobs) == {"mix#0", "mix#1", "seq#0", "reader#0"}
        assert jobs["seq#0"]["requests"] == 32                       # 4 MiB of 128 KiB
        assert jobs["mix#0"]["qd"] == 8 and jobs["reader#0"]["qd"] == 4
        assert r["verified_reads"] == r["reads"] > 100                 # every read was checked
        assert r["reads"] + r["writes"] == r["requests"] and r["bytes_written"] > 4 << 20
        valid = results["wear"][stack]["mix"]["valid"]
        assert len(valid) == 4 and sum(map(sum, valid)) > 0
    assert "fio job file mix.fio" in md


@pytest.mark.parametrize("files,replay", [(("sample.blkparse.txt", "sample_msr.csv"), "timed"),
                                          (("sample_v3.iolog", "sample_v2.iolog"), "afap")])
def test_traces_of_every_format_replay_and_verify_every_read(tmp_path, traces, files, replay):
    args = []
    for f in files:
        args += ["--trace", str(traces / f)]
    results, md = _run(tmp_path, *args, "--replay", replay, "--iodepth", "8")
    names = list(results["workloads"])
    assert len(names) == 2
    for f, name in zip(files, names):
        tr = load_trace(traces / f)
        summ = tr.summary()
        assert detect_format(traces / f) in md
        for stack in ("pblk", "appnvm"):
            r = results["stacks"][stack][name]["8"]
            assert r["mismatches"] == 0, (stack, f)
            assert r["verified_reads"] == r["reads"] == summ["reads"] > 50, (stack, f)
            assert r["writes"] == summ["writes"] and r["requests"] == summ["reads"] + summ["writes"]
            assert r["trims"] == summ["trims"] and r["flushes"] == summ["flushes"]
    if replay == "timed":                                 # issue times kept: the run lasts the trace
        r = results["stacks"]["pblk"][names[0]]["8"]
        assert r["virtual_s"] >= load_trace(traces / files[0]).duration_ns / 1e9


@pytest.mark.parametrize("args,words", [
    (["--set", "ftl.bogus=1"], "config: ftl.bogus: unknown key"),
    (["--set", "ftl.op=lots"], "config: ftl.op: expected a number, got 'lots' (a string)"),
    (["--set", "geometry.nplanes=3"], "config: geometry.nplanes: must be 1, 2 or 4, got 3"),
    (["--set", "geometry.nblocks=4"], "config: ftl.op:"),
    (["--set", "ftl.gc_policy=lru"], "config: ftl.gc_policy: 'lru' is not one of"),
    (["--sweep", "ftl.gc_policy=greedy,lru"], "config: ftl.gc_policy: 'lru' is not one of"),
])
def test_bad_configuration_is_one_error_line_exit_2(tmp_path, args, words):
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "compare", "--quick", "--no-progress",
                        "--out", str(tmp_path / "o"), *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ox: error: config: ") and words in lines[0], p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "o").exists()


def test_bad_config_file_names_file_and_key(tmp_path):
    cfg = tmp_path / "ox.toml"
    cfg.write_text("[ftl]\nop = 0.3\ngc_policy = 7\n")
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "compare", "--quick", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip() == (f"ox: error: config: {cfg}: ftl.gc_policy: expected a string, got 7 (an integer)")
