"""The rate limiter's split of the write buffer between user and GC writes (in blocks here,
as pblk counts; the target feeds it sectors)."""
from oxhost.pblk.rl import RateLimiter, RlState


def limiter(total=1024, per_line=32, budget=2048):
    rl = RateLimiter(budget)
    rl.configure(total, per_line)
    return rl


def test_rl_thresholds_follow_pblk():
    rl = limiter()
    assert rl.high == 1024 // 8 and rl.rsv == 32


def test_rl_user_gets_the_whole_buffer_above_the_high_threshold():
    rl = limiter()
    rl.update(500)
    assert (rl.state, rl.user_max, rl.gc_max, rl.gc_active) == (RlState.HIGH, 2048, 0, False)
    assert rl.gc_quota(100, 0) == 0


def test_rl_user_share_shrinks_with_free_blocks_in_64_entry_windows():
    rl = limiter()
    rl.update(96)                      # 3/4 of high
    assert rl.state == RlState.LOW and rl.gc_active
    assert rl.user_max == 1536 and rl.gc_max == 512 and rl.user_max % 64 == 0
    rl.update(64)
    assert rl.user_max == 1024


def test_rl_users_are_held_back_at_the_gc_reserve():
    rl = limiter()
    rl.update(32)
    assert rl.user_max == 0 and rl.gc_max == 2048
    assert rl.user_room(0) == 0
    assert rl.gc_quota(0, 100) == 1948


def test_rl_gc_quota_is_proportional_to_the_user_entries_of_the_cycle():
    rl = limiter()
    rl.update(64)                      # user 1024 : gc 1024
    assert rl.gc_quota(512, 0) == 512
    assert rl.gc_quota(512, 900) == 124
    assert rl.gc_quota(0, 0) == 1024   # no user traffic: GC may use its whole share


def test_rl_high_threshold_is_two_lines_on_small_targets():
    rl = limiter(total=64, per_line=4)
    assert rl.high == 8 and rl.rsv == 4
