"""oxhost.compare.fiojob: fio job files parsed into JobSpecs and their request streams."""
import collections
import itertools

import numpy as np
import pytest

from oxhost.compare.fiojob import FioJobError, JobSpec, load_fio_job, parse_fio_job

MIB, GIB = 1 << 20, 1 << 30


def jobs(text, device_bytes=GIB, **kw) -> list[JobSpec]:
    return parse_fio_job(text, device_bytes=device_bytes, **kw).jobs


def job(text, device_bytes=GIB, **kw) -> JobSpec:
    (j,) = jobs(text, device_bytes, **kw)
    return j


def reqs(j: JobSpec, n: int | None = None, rng=None) -> list[tuple[str, int, int]]:
    """(op, offset, nbytes) of the job's first n requests (flushes included)."""
    return [r[1:] for r in itertools.islice(j.requests(rng), n)]


def error(text, device_bytes=GIB, **kw) -> str:
    with pytest.raises(FioJobError) as info:
        parse_fio_job(text, device_bytes=device_bytes, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- the file format

def test_fiojob_jobs_inherit_global_and_override_it():
    a, b = jobs("""
; a comment
# another
[global]
ioengine=libaio   ; ignored
direct=1
bs=16k
size=64m
rw=randwrite

[first]
[second]
rw=read        # inline comment
bs=128k
name=renamed
""")
    assert (a.name, a.rw, a.block_sizes["write"], a.region_bytes) == ("first", "randwrite", ((16384, 100.0),), 64 * MIB)
    assert (b.name, b.rw, b.block_sizes["read"], b.region_bytes) == ("renamed", "read", ((131072, 100.0),), 64 * MIB)


def test_fiojob_later_global_applies_to_the_jobs_after_it():
    a, b = jobs("[global]\nbs=8k\n[a]\n[global]\nrw=write\n[b]\n")
    assert (a.rw, a.block_sizes["read"][0][0]) == ("read", 8192)
    assert (b.rw, b.block_sizes["write"][0][0]) == ("write", 8192)


def test_fiojob_defaults_are_fios():
    j = job("[j]\n")
    assert (j.rw, j.block_sizes["read"], j.region_offset, j.region_bytes, j.io_bytes) == \
        ("read", ((4096, 100.0),), 0, GIB, GIB)
    assert (j.iodepth, j.rwmixread, j.random_map, j.distribution, j.runtime_ns, j.loops) == \
        (1, 50, True, "random", 0, 1)


def test_fiojob_numjobs_clones_each_get_their_own_seed():
    cl = jobs("[w]\nrw=randwrite\nnumjobs=3\nsize=1m\n[v]\nrw=randwrite\nsize=1m\n")
    assert [(j.name, j.clone) for j in cl] == [("w", 0), ("w", 1), ("w", 2), ("v", 0)]
    assert len({j.seed for j in cl}) == 4
    assert len({tuple(reqs(j)) for j in cl}) == 4


def test_fiojob_sizes_take_fio_suffixes_and_kb_base():
    def size(v, extra=""):
        return job(f"[j]\nsize={v}\n{extra}").region_bytes
    assert [size(v) for v in ("4096", "8k", "8K", "8kb", "8KB", "1m", "1M", "0x4000")] == \
        [4096, 8192, 8192, 8192, 8192, MIB, MIB, 16384]
    assert size("8ki") == 8000 - 8000 % 4096         # fio's compat mode: ki is 1000
    assert size("8k", "kb_base=1000\n") == 8000 - 8000 % 4096
    assert size("8ki", "kb_base=1000\n") == 8192
    assert size("25%") == GIB // 4


@pytest.mark.parametrize("bs,want", [
    ("256k", (262144, 262144, 262144)),
    ("8k,32k", (8192, 32768, 32768)),
    ("8k,32k,", (8192, 32768, 4096)),
    (",8k", (4096, 8192, 8192)),
    (",8k,", (4096, 8192, 4096)),
    ("8k,16k,32k", (8192, 16384, 32768)),
])
def test_fiojob_bs_per_direction_follows_fios_comma_rules(bs, want):
    j = job(f"[j]\nbs={bs}\n")
    assert tuple(j.block_sizes[d][0][0] for d in ("read", "write", "trim")) == want


def test_fiojob_ignored_options_are_accepted():
    j = job("[j]\nioengine=io_uring\ndirect=1\nfilename=/dev/nvme0n1\ngroup_reporting\nthread\n"
            "ramp_time=5\nstartdelay=1\nrandom_generator=lfsr\nstonewall\nend_fsync=1\nrw=randread\n")
    assert j.rw == "randread"
    assert j.options["filename"] == "/dev/nvme0n1"


# ---------------------------------------------------------------- the request stream

def test_fiojob_sequential_write_walks_the_region_from_offset():
    j = job("[j]\nrw=write\nbs=16k\nsize=64k\noffset=1m\n")
    assert reqs(j) == [("write", MIB + k * 16384, 16384) for k in range(4)]


def test_fiojob_io_size_beyond_size_wraps_and_loops_repeat():
    j = job("[j]\nrw=write\nbs=16k\nsize=32k\nio_size=64k\n")
    assert [o for _, o, _ in reqs(j)] == [0, 16384, 0, 16384]
    j = job("[j]\nrw=read\nbs=16k\nsize=32k\nloops=3\n")
    assert [o for _, o, _ in reqs(j)] == [0, 16384] * 3


def test_fiojob_sequential_mix_keeps_a_position_per_direction():
    """As fio: rw=rw with bs=8k,32k reads 0, 8k, 16k... and writes 0, 32k, 64k..."""
    out = reqs(job("[j]\nrw=rw\nbs=8k,32k\nsize=256k\n"))
    reads = [o for op, o, _ in out if op == "read"]
    writes = [o for op, o, _ in out if op == "write"]
    assert reads == [k * 8192 for k in range(len(reads))]
    assert writes == [k * 32768 for k in range(len(writes))]
    assert sum(n for _, _, n in out) == 256 * 1024


def test_fiojob_random_map_touches_every_block_once_per_pass():
    out = reqs(job("[j]\nrw=randwrite\nsize=1m\n"))
    assert sorted(o for _, o, _ in out) == list(range(0, MIB, 4096))
    out = reqs(job("[j]\nrw=randwrite\nsize=1m\nio_size=3m\n"))
    assert collections.Counter(o for _, o, _ in out) == {o: 3 for o in range(0, MIB, 4096)}
    assert sorted(o for _, o, _ in out[:256]) == list(range(0, MIB, 4096))


def test_fiojob_random_map_with_mixed_sizes_covers_each_block_once():
    out = reqs(job("[j]\nrw=randwrite\nsize=4m\nbssplit=4k/50:16k/30:64k/20\n"))
    blocks = collections.Counter(b for _, o, n in out for b in range(o // 4096, (o + n) // 4096))
    assert blocks == {b: 1 for b in range(1024)}


def test_fiojob_norandommap_lets_offsets_repeat():
    j = job("[j]\nrw=randread\nsize=1m\nnorandommap\n")
    assert not j.random_map
    offs = [o for _, o, _ in reqs(j)]
    assert len(offs) == 256 and len(set(offs)) < 256


def test_fiojob_offsets_stay_in_the_region_and_on_the_grain():
    for extra in ("rw=randrw\nbssplit=4k/50:64k/40:1m/10", "rw=randwrite\nbssplit=8k/50:64k/50\nnorandommap",
                  "rw=randread\nbs=16k\nblockalign=4k", "rw=randwrite\nrandom_distribution=zipf:0.9\nbs=8k",
                  "rw=randtrim\nrandom_distribution=pareto:0.3\nbs=12k", "rw=write\nbs=12k",
                  "rw=randwrite\nrandom_distribution=normal:20\nbs=8k",
                  "rw=randrw\nrandom_distribution=zoned:60/10:30/20:10/70\nbsrange=4k-64k",
                  "rw=randwrite\nrandom_distribution=zoned_abs:70/1m:30/2m\nbs=4k"):
        j = job(f"[j]\nsize=3m\noffset=1m\nio_size=16m\n{extra}\n")
        out = reqs(j)
        assert sum(n for _, _, n in out) == j.total_bytes > 16 * MIB - j.grain, extra
        for op, o, n in out:
            assert op in j.directions
            assert MIB <= o and o + n <= MIB + j.region_bytes, (extra, o, n)
            assert (o - MIB) % j.grain == 0 and n % 512 == 0 and n > 0, (extra, o, n)


def test_fiojob_blockalign_turns_the_map_off_and_aligns_offsets():
    j = job("[j]\nrw=randread\nbs=16k\nba=4k\nsize=1m\nnumber_ios=2000\n")
    assert (j.grain, j.random_map) == (4096, False)
    offs = [o for _, o, _ in reqs(j)]
    assert any(o % 16384 for o in offs)


def test_fiojob_bssplit_weights_the_sizes():
    j = job("[j]\nrw=randwrite\nbssplit=4k/50:64k/40:1m/10\nnorandommap\nnumber_ios=20000\nio_size=1t\n")
    counts = collections.Counter(n for _, _, n in reqs(j))
    assert counts[4096] / 20000 == pytest.approx(0.5, abs=0.02)
    assert counts[65536] / 20000 == pytest.approx(0.4, abs=0.02)
    assert counts[MIB] / 20000 == pytest.approx(0.1, abs=0.02)


def test_fiojob_bssplit_blank_percentages_share_the_rest():
    j = job("[j]\nbssplit=4k/50:8k/:32k/\n")
    assert j.block_sizes["read"] == ((4096, 50.0), (8192, 25.0), (32768, 25.0))


def test_fiojob_bssplit_per_direction():
    j = job("[j]\nrw=randrw\nbssplit=4k/50:8k/50,16k/90:32k/10\n")
    assert j.block_sizes["read"] == ((4096, 50.0), (8192, 50.0))
    assert j.block_sizes["write"] == ((16384, 90.0), (32768, 10.0))


@pytest.mark.parametrize("opt,reads", [("rwmixread=70", 0.7), ("rwmixwrite=20", 0.8), ("", 0.5),
                                       ("rwmixread=0", 0.0)])
def test_fiojob_rwmix_sets_the_read_share(opt, reads):
    out = reqs(job(f"[j]\nrw=randrw\nnorandommap\nnumber_ios=20000\n{opt}\n"))
    share = sum(op == "read" for op, _, _ in out) / len(out)
    assert share == pytest.approx(reads, abs=0.015)


def test_fiojob_requests_are_deterministic_for_a_seed():
    text = "[j]\nrw=randrw\nbssplit=4k/60:64k/40\nrandom_distribution=zipf:1.1\nnumber_ios=3000\nrandseed=42\n"
    a, b = job(text), job(text)
    assert reqs(a) == reqs(b)
    assert reqs(a, rng=np.random.default_rng(5)) == reqs(a, rng=np.random.default_rng(5))
    assert reqs(a, rng=np.random.default_rng(5)) != reqs(a, rng=np.random.default_rng(6))
    assert reqs(job(text.replace("randseed=42", "randseed=43"))) != reqs(a)


def test_fiojob_changing_bssplit_leaves_the_direction_stream_alone():
    base = "[j]\nrw=randrw\nnorandommap\nnumber_ios=500\nrandseed=1\n"
    a = [op for op, _, _ in reqs(job(base + "bs=4k\n"))]
    b = [op for op, _, _ in reqs(job(base + "bssplit=4k/50:8k/50\n"))]
    assert a == b


@pytest.mark.parametrize("dist,top10", [("zipf:1.2", 88.76), ("pareto:0.2", 63.55)])
def test_fiojob_skewed_distributions_match_fio_genzipf(dist, top10):
    """fio-genzipf -t zipf -i 1.2 -g 1 -b 4096 (fio 3.33): the hottest 10% of the blocks hit get
    88.76% of 262144 draws over 1 GiB; pareto 0.2: 63.55%."""
    j = job(f"[j]\nrw=randread\nrandom_distribution={dist}\nnumber_ios=262144\n")
    assert not j.random_map
    blocks = np.fromiter((r[2] // 4096 for r in j.requests()), dtype=np.int64, count=262144)
    hits = np.sort(np.bincount(blocks))[::-1]
    hits = hits[hits > 0]
    share = 100 * hits[:hits.size // 10].sum() / hits.sum()
    assert share == pytest.approx(top10, abs=1.5)


def test_fiojob_zipf_center_moves_the_hot_spot():
    a = job("[j]\nrw=randread\nrandom_distribution=zipf:1.5:0\nnumber_ios=2000\n")
    b = job("[j]\nrw=randread\nrandom_distribution=zipf:1.5:0.5\nnumber_ios=2000\n")
    hot_a = collections.Counter(o for _, o, _ in reqs(a)).most_common(1)[0][0]
    hot_b = collections.Counter(o for _, o, _ in reqs(b)).most_common(1)[0][0]
    assert (hot_b - hot_a) % GIB == GIB // 2


def test_fiojob_offset_percent_and_offset_increment_place_the_clones():
    cl = jobs("[j]\nrw=write\nsize=1m\noffset=25%\noffset_increment=2m\nnumjobs=3\n")
    assert [j.region_offset for j in cl] == [GIB // 4, GIB // 4 + 2 * MIB, GIB // 4 + 4 * MIB]
    assert [reqs(j, 1)[0][1] for j in cl] == [j.region_offset for j in cl]


def test_fiojob_layout_beyond_the_device_is_scaled_to_it_in_proportion():
    """Two jobs on halves of a 10 GiB file, on a 1 GiB device: halves of the device."""
    f = parse_fio_job("[global]\nrw=write\nsize=5g\nio_size=10g\n[a]\n[b]\noffset=5g\n", device_bytes=GIB)
    a, b = f.jobs
    assert (a.region_offset, a.region_bytes, a.io_bytes) == (0, GIB // 2, GIB)
    assert (b.region_offset, b.region_bytes) == (GIB // 2, GIB // 2)
    assert f.scaled.startswith("the jobs reach 10,737,418,240 bytes into a device of 1,073,741,824")
    assert f.notes()[0].startswith("scaled: ") and "x 0.1" in f.notes()[0]
    cl = jobs("[j]\nsize=1m\noffset_increment=600m\nnumjobs=3\n")     # clone 2 at 1.2 GiB
    assert [j.region_offset // MIB for j in cl] == [0, 511, 1023] and cl[2].region_offset + cl[2].region_bytes <= GIB
    fit = parse_fio_job("[j]\nsize=1g\n", device_bytes=GIB)
    assert fit.scaled == "" and fit.jobs[0].region_bytes == GIB


def test_fiojob_number_ios_caps_the_stream():
    assert len(reqs(job("[j]\nrw=randread\nnumber_ios=17\n"))) == 17


def test_fiojob_time_based_runs_until_the_runner_stops_it():
    j = job("[j]\nrw=randwrite\nsize=1m\nruntime=2m\ntime_based\n")
    assert (j.runtime_ns, j.time_based, j.total_bytes) == (120 * 10**9, True, None)
    assert len(reqs(j, 5000)) == 5000
    assert job("[j]\nrw=randwrite\nsize=1m\ntimeout=2m\ntime_based\n").runtime_ns == 120 * 10**9


@pytest.mark.parametrize("value,ns", [("30", 30 * 10**9), ("10s", 10**10), ("500ms", 5 * 10**8),
                                      ("250us", 250_000), ("1h", 3600 * 10**9), ("2msec", 2 * 10**6)])
def test_fiojob_runtime_takes_fio_time_suffixes(value, ns):
    j = job(f"[j]\nruntime={value}\n")
    assert j.runtime_ns == ns and not j.time_based and j.total_bytes == GIB


def test_fiojob_trim_jobs_issue_trims():
    assert {op for op, _, _ in reqs(job("[j]\nrw=randtrim\nsize=1m\n"))} == {"trim"}
    assert reqs(job("[j]\nrw=trim\nsize=8k\n")) == [("trim", 0, 4096), ("trim", 4096, 4096)]


def test_fiojob_describe_is_one_line():
    d = job("[j]\nrw=randrw\nbssplit=4k/50:64k/50\nrandom_distribution=zipf:1.2\n").describe()
    assert "\n" not in d and "zipf:1.2" in d and "rwmixread=50" in d


def test_fiojob_load_names_the_file_in_errors(tmp_path):
    p = tmp_path / "bad.fio"
    p.write_text("[global]\nbs=4k\n\n[j]\nrw=randwrite\nflow=10\n")
    with pytest.raises(FioJobError) as info:
        load_fio_job(p, device_bytes=GIB)
    assert str(info.value).startswith(f"{p}:6: flow: not modeled")
    p.write_text("[j]\nrw=randwrite\n")
    assert load_fio_job(p, device_bytes=GIB).jobs[0].rw == "randwrite"


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("text,where", [
    ("[j]\nflow=10\n", "<job>:2: flow: not modeled"),
    ("[j]\nrw=randread\nzonemode=strided\n", "<job>:3: zonemode: not modeled"),
    ("[j]\nverify_only\n", "<job>:2: verify_only: not modeled"),
    ("[j]\nnrfiles=4\n", "<job>:2: nrfiles: one file per job is modeled"),
    ("[j]\n\nrw=randwrte\n", "<job>:3: rw: 'randwrte' is not modeled"),
    ("[j]\nrw=randread:8\n", "<job>:2: rw: 'randread:8': the ':<nr>' offset modifier"),
    ("[j]\nbs=1000\n", "<job>:2: bs: 1000 bytes is not a multiple of 512 bytes"),
    ("[j]\nbs=4x\n", "<job>:2: bs: '4x' is not a size"),
    ("[j]\nbs=1k,2k,4k,8k\n", "<job>:2: bs: at most three"),
    ("[j]\nbssplit=4k/60:8k/50\n", "<job>:2: bssplit: percentages in '4k/60:8k/50' add up to 110"),
    ("[j]\nbssplit=4k/60:8k/30\n", "<job>:2: bssplit: percentages in '4k/60:8k/30' add up to 90, not 100"),
    ("[j]\nbssplit=4k/50:2000/50\n", "<job>:2: bssplit: 2000 bytes is not a multiple of 512"),
    ("[j]\nbsrange=1k-2000\n", "<job>:2: bsrange: 2000 bytes is not a multiple of 512"),
    ("[j]\nrandom_distribution=zipf:1\n", "<job>:2: random_distribution: zipf theta must be positive and not 1"),
    ("[j]\nrandom_distribution=pareto:1.5\n", "<job>:2: random_distribution: pareto h must be in (0, 1)"),
    ("[j]\nrandom_distribution=normal:100\n", "<job>:2: random_distribution: the normal deviation must be"),
    ("[j]\nrandom_distribution=lognormal:5\n", "<job>:2: random_distribution: 'lognormal' is not a distr"),
    ("[j]\nrandom_distribution=zoned:60/10:30/90\n", "<job>:2: random_distribution: access percentages add up "
                                                      "to 90, not 100"),
    ("[j]\nrandom_distribution=zoned:60/50:40/60\n", "<job>:2: random_distribution: zone sizes add up to 110%"),
    ("[j]\nrandom_distribution=zoned:60\n", "<job>:2: random_distribution: '60' is not ACCESS/PERCENT"),
    ("[j]\nrw=randread\nrandom_distribution=sequence:3,9999999\n", "<job>:3: random_distribution: block "
                                                                      "9999999 is past the region"),
    ("[j]\nthinktime=1x\n", "<job>:2: thinktime: '1x' is not a time"),
    ("[j]\nrate_process=bursty\n", "<job>:2: rate_process: 'bursty' is not linear or poisson"),
    ("[j]\nruntime=10q\n", "<job>:2: runtime: '10q' is not a time"),
    ("[j]\ntime_based\n", "<job>:2: time_based: needs a runtime"),
    ("[j]\nrwmixread=120\n", "<job>:2: rwmixread: 120 is outside 0..100"),
    ("[j]\nnorandommap=maybe\n", "<job>:2: norandommap: 'maybe' is not a boolean"),
    ("[j]\noffset=1000\n", "<job>:2: offset: 1000 is not a multiple of 512 bytes"),
    ("[j]\nsize=0\n", "<job>:2: size: the region of 0 bytes holds no block"),
    ("[j]\niodepth\n", "<job>:2: iodepth: needs a value"),
    ("rw=read\n[j]\n", "<job>:1: option outside any [section]"),
    ("[j\nrw=read\n", "<job>:1: malformed section header"),
    ("[j]\ninclude other.fio\n", "<job>:2: malformed line"),
    ("[global]\nrw=write\n", "<job>: no job sections"),
])
def test_fiojob_refusals_name_the_option_and_line(text, where):
    assert error(text).startswith(where)


def test_fiojob_source_name_is_used_in_errors():
    assert error("[j]\nflow=1\n", source="my.fio").startswith("my.fio:2: flow:")


# ---------------------------------------------------------------- fio's other options

def ops(j: JobSpec, n: int | None = None) -> list[tuple]:
    """(t_ns, op, offset, nbytes) of the job's first n requests."""
    return list(itertools.islice(j.requests(), n))


@pytest.mark.parametrize("rng,want", [
    ("4k-4k", {4096: 100.0}),
    ("4k-16k", {4096: 25.0, 8192: 25.0, 12288: 25.0, 16384: 25.0}),
    ("16k:4k", {4096: 25.0, 8192: 25.0, 12288: 25.0, 16384: 25.0}),        # swapped, as fio does
    ("4k-10k", {4096: 40.0, 8192: 40.0, 10240: 20.0}),                     # minbs + maxbs x u, capped
])
def test_fiojob_bsrange_draws_sizes_as_fios_get_next_buflen(rng, want):
    j = job(f"[j]\nrw=randread\nbsrange={rng}\n")
    assert dict(j.block_sizes["read"]) == pytest.approx(want)
    n = 20000
    got = collections.Counter(r[3] for r in ops(job(f"[j]\nrw=randread\nbsrange={rng}\nnorandommap\n"
                                                       f"number_ios={n}\n")))
    assert {k: 100 * v / n for k, v in got.items()} == pytest.approx(want, abs=1.5)


def test_fiojob_bsrange_per_direction():
    j = job("[j]\nrw=randrw\nbsrange=1k-4k,8k-8k\n")
    assert [s for s, _ in j.block_sizes["read"]] == [1024, 2048, 3072, 4096]
    assert j.block_sizes["write"] == ((8192, 100.0),)


def test_fiojob_filesize_sets_the_region_and_size_becomes_the_io_size():
    j = job("[j]\nrw=write\nfilesize=8m\nsize=32m\n")
    assert (j.region_bytes, j.io_bytes) == (8 * MIB, 32 * MIB)
    assert job("[j]\nrw=write\nfilesize=8m\n").io_bytes == 8 * MIB
    assert job("[j]\nrw=write\nfilesize=8m\nsize=32m\nio_size=4m\n").io_bytes == 4 * MIB
    sizes = {j.region_bytes for j in jobs("[j]\nrw=write\nfilesize=4m-64m\nnumjobs=16\n")}
    assert len(sizes) > 4 and all(4 * MIB <= s <= 64 * MIB for s in sizes)


def test_fiojob_sub_sector_sizes_are_taken_in_512_byte_steps():
    j = job("[j]\nrw=randwrite\nbssplit=512/50:3584/50\nblockalign=4k\nnorandommap\nnumber_ios=200\n")
    assert j.grain == 4096 and not j.random_map
    out = ops(j)
    assert {n for *_, n in out} == {512, 3584}
    assert all(o % 4096 == 0 for _, _, o, _ in out)                    # aligned to blockalign, as fio
    seq = ops(job("[j]\nrw=write\nbs=512\nsize=4k\n"))
    assert [(o, n) for _, _, o, n in seq] == [(k * 512, 512) for k in range(8)]


def test_fiojob_zoned_puts_the_stated_share_of_accesses_in_each_range():
    j = job("[j]\nrw=randread\nrandom_distribution=zoned:50/5:30/15:20/80\nnumber_ios=100000\n")
    assert not j.random_map                               # a non-uniform distribution: no map, as fio
    nblk = GIB // 4096                  # fio: start = stotal x lastb / 100, length = lastb x size% / 100
    assert j.zone_blocks("read") == ((50, 0, nblk * 5 // 100), (30, nblk * 5 // 100, nblk * 20 // 100),
                                     (20, nblk * 20 // 100, nblk * 20 // 100 + nblk * 80 // 100))
    blk = np.array([o // 4096 for _, _, o, _ in ops(j)])
    shares = [np.mean((blk >= lo) & (blk < hi)) * 100 for _, lo, hi in j.zone_blocks("read")]
    assert shares == pytest.approx([50, 30, 20], abs=0.8)
    lo, hi = j.zone_blocks("read")[0][1:]
    inside = blk[(blk >= lo) & (blk < hi)]
    assert len(np.unique(inside)) > 0.9 * min(hi - lo, inside.size) * (1 - np.exp(-inside.size / (hi - lo)))


def test_fiojob_zoned_blanks_share_the_rest_and_may_leave_the_end_untouched():
    j = job("[j]\nrw=randread\nrandom_distribution=zoned:60/10:/20:/\n")
    assert j.zones["read"] == ((60, 0, 10), (20, 10, 30), (20, 30, 100))   # (100-60)//2 %, 100-30 % of the size
    blk = np.array([o // 4096 for _, _, o, _ in ops(job(
        "[j]\nrw=randread\nrandom_distribution=zoned:60/10:40/20\nnumber_ios=5000\n"))])
    assert blk.max() < (GIB // 4096) * 30 // 100                          # nothing past 30 %


def test_fiojob_zoned_per_direction_and_zoned_abs():
    j = job("[j]\nrw=randrw\nrandom_distribution=zoned:100/10,100/50:0/50\nnumber_ios=4000\n")
    out = ops(j)
    rd = [o for _, op, o, _ in out if op == "read"]
    wr = [o for _, op, o, _ in out if op == "write"]
    assert max(rd) < GIB // 10 and max(wr) < GIB // 2
    a = job("[j]\nrw=randwrite\nrandom_distribution=zoned_abs:70/8m:30/24m\nnumber_ios=20000\n")
    offs = np.array([o for _, _, o, _ in ops(a)])
    assert np.mean(offs < 8 * MIB) == pytest.approx(0.7, abs=0.015) and offs.max() < 32 * MIB
    small = job("[j]\nrw=randwrite\nrandom_distribution=zoned_abs:70/8m:30/24m\nsize=16m\n")
    assert small.zones["write"] == ((70, 0, 4 * MIB), (30, 4 * MIB, 16 * MIB))   # scaled into the region


def _hot_third(blocks: np.ndarray, n: int) -> float:
    hits = np.sort(np.bincount(blocks, minlength=n))[::-1]
    return hits[:n // 3].sum() / hits.sum()


def test_fiojob_normal_concentrates_accesses_like_fios_gauss():
    """fio's gauss_next: the mean of 12 draws of rand % (n + 1) (a bell of n/12 standard
    deviation), hashed onto the n blocks. The share of the hottest third of the blocks is
    compared with that of the same draws put through a random function (any good hash
    collides alike); a deviation of 50 % of n widens the bell."""
    n = 1 << 12
    rng = np.random.default_rng(7)
    ranks = (rng.integers(0, n + 1, (50000, 12)).sum(axis=1) + 11) // 12
    want = _hot_third(rng.integers(0, n, n + 1)[ranks], n)
    assert 0.97 < want < 1.0                                             # 95.4 % within 2 sd, plus collisions
    j = job(f"[j]\nrw=randread\nrandom_distribution=normal\nsize={n * 4096}\nio_size=1t\nnumber_ios=50000\n")
    got = _hot_third(np.array([o // 4096 for _, _, o, _ in ops(j)]), n)
    assert got == pytest.approx(want, abs=0.01)
    wide = job(f"[j]\nrw=randread\nrandom_distribution=gauss:50\nsize={n * 4096}\nio_size=1t\n"
               "number_ios=50000\n")
    assert _hot_third(np.array([o // 4096 for _, _, o, _ in ops(wide)]), n) < want - 0.05


def test_fiojob_sequence_distribution_repeats_its_blocks():
    j = job("[j]\nrw=randread\nbs=8k\nrandom_distribution=sequence:2,0,1\nnumber_ios=7\n")
    assert [o for _, _, o, _ in ops(j)] == [16384, 0, 8192] * 2 + [16384]
    s = job("[j]\nrw=randread\nbs=8k\nrandom_distribution=sequence:2,0,1\nrandom_sequence_stride=1\n"
            "number_ios=6\n")
    assert [o // 8192 for _, _, o, _ in ops(s)] == [2, 0, 1, 5, 3, 4]


def test_fiojob_percentage_random_mixes_sequential_runs_in():
    seq = [o for _, _, o, _ in ops(job("[j]\nrw=randread\npercentage_random=0\nsize=1m\n"))]
    assert seq == list(range(0, MIB, 4096))
    half = [o for _, _, o, _ in ops(job("[j]\nrw=randread\npercentage_random=50\nnorandommap\nnumber_ios=4000\n"))]
    follows = np.mean([b == a + 4096 for a, b in zip(half, half[1:])])
    assert follows == pytest.approx(0.5, abs=0.03)


def test_fiojob_rate_spaces_issue_times_in_virtual_time():
    j = job("[j]\nrw=randread\nbs=4k\nrate=4m\nnumber_ios=5\n")             # 1024 IOPS of 4 KiB
    assert [t for t, *_ in ops(j)] == [int(k * 1e9 / 1024) for k in range(5)]
    assert job("[j]\nrw=randread\nbs=4k\nrate_iops=1000\n").rate_bps == (4096000, 4096000, 4096000)
    rw = ops(job("[j]\nrw=randrw\nbs=4k\nrate=,4m\nnumber_ios=200\n"))          # writes only
    assert all(t is None for t, op, *_ in rw if op == "read")
    assert [t for t, op, *_ in rw if op == "write"][:3] == [0, int(1e9 / 1024), int(2e9 / 1024)]
    p = ops(job("[j]\nrw=randread\nbs=4k\nrate_iops=1000\nrate_process=poisson\nnumber_ios=20001\n"))
    gaps = np.diff([t for t, *_ in p])
    assert gaps.mean() == pytest.approx(1e6, rel=0.03) and gaps.std() == pytest.approx(1e6, rel=0.05)


def test_fiojob_fsync_flushes_every_n_writes_and_end_fsync_at_the_end():
    out = [op for _, op, *_ in ops(job("[j]\nrw=write\nsize=40k\nfsync=4\nend_fsync=1\n"))]
    assert out == ["write"] * 4 + ["flush"] + ["write"] * 4 + ["flush"] + ["write"] * 2 + ["flush"]
    assert job("[j]\nrw=write\nfdatasync=2\n").fsync_every == 2


def test_fiojob_stonewall_starts_a_group_and_clones_share_theirs():
    f = parse_fio_job("[a]\nstonewall\n[b]\nnumjobs=2\n[c]\nstonewall\nnumjobs=2\n[d]\nwait_for_previous\n",
                      device_bytes=GIB)
    assert [(j.label, j.phase) for j in f.jobs] == [("a#0", 0), ("b#0", 0), ("b#1", 0), ("c#0", 1), ("c#1", 1),
                                                    ("d#0", 2)]
    assert [[j.label for j in p] for p in f.phases] == [["a#0", "b#0", "b#1"], ["c#0", "c#1"], ["d#0"]]


def test_fiojob_time_options_take_fios_default_units():
    j = job("[j]\nthinktime=250\nthinktime_blocks=4\nthinktime_blocks_type=issue\nramp_time=2\n"
            "startdelay=5ms\nthinktime_iotime=1\n")
    assert (j.thinktime_ns, j.thinktime_blocks, j.thinktime_issue) == (250_000, 4, True)   # us by default
    assert (j.ramp_ns, j.start_ns, j.thinktime_iotime_ns) == (2 * 10**9, 5 * 10**6, 10**9)
    assert job("[j]\nthinktime=1\nthinktime_iotime=1\n").thinktime_blocks == 0    # iotime alone, as fio
    delays = {j.start_ns for j in jobs("[j]\nstartdelay=1-3\nnumjobs=8\n")}
    assert len(delays) > 1 and all(10**9 <= d <= 3 * 10**9 for d in delays)


def test_fiojob_ignored_options_are_listed_once():
    f = parse_fio_job("[global]\nioengine=libaio\ndirect=1\nverify=md5\n[a]\nfilename=/dev/x\n[b]\n"
                      "write_lat_log=lat\nrate_min=1m\n", device_bytes=GIB)
    assert f.ignored == ("direct", "filename", "ioengine", "rate_min", "verify", "write_lat_log")
    assert f.notes() == ["ignored (they do not shape the I/O here): direct, filename, ioengine, rate_min, "
                         "verify, write_lat_log"]


def test_fiojob_estimates_requests_from_bytes_ios_loops_and_runtime():
    assert job("[j]\nrw=read\nbs=64k\nsize=64m\n").estimate_requests() == 1024
    assert job("[j]\nrw=read\nbs=64k\nsize=64m\nloops=3\n").estimate_requests() == 3072
    assert job("[j]\nrw=read\nbs=64k\nsize=64m\nnumber_ios=10\n").estimate_requests() == 10
    assert job("[j]\nrw=randrw\nbssplit=4k/50:12k/50\nio_size=8m\n").estimate_requests() == 1024
    tb = job("[j]\nrw=randread\nruntime=2\ntime_based\n")
    assert tb.estimate_requests(1000.0) == 2000
    assert job("[j]\nrw=randread\nruntime=2\ntime_based\nrate_iops=100\n").estimate_requests(1000.0) == 200
    assert job("[j]\nrw=randread\nsize=4k\nruntime=2\n").estimate_requests(1000.0) == 1      # bytes end it first


def test_fiojob_rwmix_keeps_a_new_direction_until_its_count_catches_up_as_fio():
    """fio's get_rw_ddir/set_rwmix_bytes: on a switch from a to b, b is kept until b's
    count reaches a's count x b's share / 100; then each request draws again."""
    out = [op for _, op, *_ in ops(job("[j]\nrw=randrw\nrwmixread=30\nnorandommap\nnumber_ios=5000\n"))]
    share = {"read": 30, "write": 70}
    count = {"read": 0, "write": 0}
    keep_until = None
    switches = 0
    for prev, op in zip([None] + out, out):
        if keep_until is not None and count[keep_until[0]] < keep_until[1]:
            assert op == keep_until[0]
        if prev is not None and op != prev:
            switches += 1
            keep_until = (op, count[prev] * share[op] // 100)
        count[op] += 1
    assert switches > 500
