"""What Ape-X needs at scale: the replay's rate limiter, prioritized sampling over all shards, staleness, and
snapshots that do not hold up inserts."""

import threading
import time

import numpy as np
import pytest

from replay.durable import DurableShard
from replay.episodes import EpisodeBatch
from replay.rate_limiter import RateLimiter
from replay.sampling import merge_parts, split_batch
from replay.shard import ReplayShard


def episodes(n: int, length: int = 4, version: int = 0, priority: float = 1.0) -> EpisodeBatch:
    return EpisodeBatch(
        np.full((n, 2), 4),
        np.full((n, length), 5),
        np.ones((n, length), np.float32),
        np.full(n, length),
        priorities=np.full(n, priority),
        versions=np.full(n, version),
    )


def test_rate_limiter_holds_the_ratio_within_the_error_buffer():
    lim = RateLimiter(samples_per_insert=2.0, min_size_to_sample=3, error_buffer=10)
    assert lim.can_insert() and not lim.can_sample() and lim.headroom() == 0
    lim.inserted_now(4, 1)
    lim.inserted_now(4, 1)
    assert not lim.can_sample()  # below min_size_to_sample
    lim.inserted_now(4, 1)  # the table holds 3 episodes: the clock starts with this insert, diff = 2 * 4 = 8 < 10
    assert lim.started and lim.inserted == 4 and lim.diff == 8 and lim.can_sample() and lim.can_insert()
    assert lim.headroom() == 18
    lim.inserted_now(4, 1)  # diff = 16 >= 10: actors are ahead, the next insert waits
    assert not lim.can_insert() and lim.can_sample() and lim.headroom() == 26
    lim.sampled_now(12)  # diff = 4
    assert lim.can_insert()
    lim.sampled_now(14)  # diff = -10: the learner is ahead, the next sample waits
    assert lim.diff == -10 and not lim.can_sample() and lim.can_insert()
    lim.blocked("sample", 0.5)
    lim.blocked("insert", 0.25)
    assert (lim.sample_blocked_s, lim.samples_blocked, lim.insert_blocked_s, lim.inserts_blocked) == (0.5, 1, 0.25, 1)


def test_with_no_error_buffer_the_actor_and_learner_take_turns_at_the_ratio():
    """Serial mode's limiter: 2 transitions sampled per transition inserted, an error buffer of 0."""
    lim = RateLimiter(samples_per_insert=2.0, min_size_to_sample=1, error_buffer=0)
    lim.inserted_now(3, 1)  # diff = 6
    assert lim.can_sample() and not lim.can_insert()
    lim.sampled_now(4)  # diff = 2: the learner still owes 2
    assert lim.can_sample() and not lim.can_insert()
    lim.sampled_now(4)  # diff = -2: the learner is ahead, the actor's turn
    assert not lim.can_sample() and lim.can_insert()
    lim.inserted_now(3, 1)  # diff = 4
    assert lim.can_sample() and not lim.can_insert() and lim.inserted == 6 and lim.sampled == 8


def test_global_sampling_over_four_skewed_shards_matches_the_single_table_shares():
    rng = np.random.default_rng(0)
    # Shard i holds 10 episodes; priorities differ by shard and within each shard.
    shards = [ReplayShard(16, 2, 4, alpha=1.0, seed=i, priority_eps=0.0) for i in range(4)]
    priorities = [np.linspace(1, 2, 10) * scale for scale in (1.0, 3.0, 0.5, 10.0)]
    for shard, p in zip(shards, priorities):
        batch = episodes(10)
        batch.priorities = p
        shard.add(batch)
    flat = np.concatenate(priorities)
    share = flat / flat.sum()  # the single-table probability of each of the 40 episodes
    counts = np.zeros(40)
    draws, B = 0, 50
    while draws < 100_000:
        totals = np.array([s.total_priority for s in shards])
        split = split_batch(rng, totals, B)
        parts = [(i, shards[i].sample(int(k), 1.0)) for i, k in enumerate(split) if k]
        batch, shard_index = merge_parts(parts, totals / totals.sum(), 40, beta=1.0)
        np.add.at(counts, shard_index * 10 + batch.slots, 1)
        draws += B
        # Importance weights use the global probability p / sum(p) and the global size.
        expected = 1.0 / (40 * share[shard_index * 10 + batch.slots])
        assert np.allclose(batch.weights, expected / expected.max(), rtol=1e-5)
    freq = counts / counts.sum()
    shard_freq = freq.reshape(4, 10).sum(1)
    shard_share = share.reshape(4, 10).sum(1)
    assert np.abs(shard_freq - shard_share).max() < 0.02, (shard_freq, shard_share)
    assert np.abs(freq - share).max() < 0.02
    # Without the split, taking shards in turn would give each 25%: far from these shares.
    assert np.abs(shard_share - 0.25).max() > 0.2


def test_max_lag_skips_episodes_of_old_weights():
    shard = ReplayShard(32, 2, 4, seed=1)
    shard.add(episodes(8, version=3))
    shard.add(episodes(8, version=10))
    batch = shard.sample(64, 0.4, min_version=5)
    assert (batch.versions == 10).all() and shard.stale_skipped == 8
    assert (batch.ages >= 0).all() and (batch.ages < 5).all()
    with pytest.raises(ValueError, match="older than weights version 11"):
        shard.sample(4, 0.4, min_version=11)


def test_snapshot_takes_references_and_inserts_copy_on_write(tmp_path):
    shard = ReplayShard(8, 2, 4)
    shard.add(episodes(2, version=1))
    arrays, meta = shard.freeze()
    assert arrays["versions"] is shard.versions  # no copy when the snapshot is taken
    shard.add(episodes(2, version=2))  # the first change after it copies
    assert arrays["versions"] is not shard.versions
    assert arrays["versions"][:4].tolist() == [1, 1, -1, -1] and shard.versions[:4].tolist() == [1, 1, 2, 2]
    assert meta["size"] == 2 and shard.size == 4


def test_a_slow_snapshot_write_does_not_hold_up_inserts(tmp_path, monkeypatch):
    import replay.durable as durable

    release = threading.Event()
    real_write = durable.write_sealed

    def slow_write(path, payload):
        release.wait(10)
        real_write(path, payload)

    monkeypatch.setattr(durable, "write_sealed", slow_write)
    d = DurableShard(ReplayShard(64, 2, 4), tmp_path, "shard-0", every_s=0)
    d.add(episodes(4))
    covered = d.snapshot(wait=False)  # the writer now waits on `release`
    t0 = time.perf_counter()
    for _ in range(5):
        d.add(episodes(4))
    assert time.perf_counter() - t0 < 1.0 and d.writer.is_alive()  # inserts went on during the write
    release.set()
    d.writer.join()
    back = ReplayShard(64, 2, 4)
    back.load_snapshot(tmp_path / "shard-0.snap")
    assert covered == 16 and back.inserted_transitions == 16 and back.size == 4  # the state when it was taken


def test_rate_limiter_actor_holds_inserts_and_samples_to_the_ratio(ray_local):
    ray = ray_local
    from distributed.hosts import RateLimiterActor

    # samples_per_insert 1, sampling from 2 episodes on, 8 transitions of error buffer; inserts of 4 transitions.
    lim = RateLimiterActor.remote(1.0, 2, 8.0)
    ray.get([lim.insert.remote(4, 1) for _ in range(2)])  # the 2nd insert fills the minimum: the clock starts, diff 4
    assert ray.get(lim.sample.remote(0)) == 12  # headroom: 12 transitions before the learner is a buffer ahead
    held = lim.sample.remote(12)  # diff -8: the learner is ahead, held until an insert
    ready, _ = ray.wait([held], timeout=1.0)
    assert not ready
    ray.get(lim.insert.remote(4, 1))  # diff -4: the held sample goes
    assert ray.get(held, timeout=10) == 4
    for _ in range(3):
        ray.get(lim.insert.remote(4, 1))  # diff 0, 4, 8
    held = lim.insert.remote(4, 1)  # diff 8 >= 8: actors are ahead, held until the learner samples
    ready, _ = ray.wait([held], timeout=1.0)
    assert not ready
    ray.get(lim.sample.remote(4))  # diff 4: the held insert goes (diff 8)
    ray.get(held, timeout=10)
    stats = ray.get(lim.stats.remote())
    assert (stats["inserted"], stats["sampled"]) == (24, 16)  # 6 inserts of 4 from the one that started the clock
    assert stats["samples_blocked"] == 1 and stats["inserts_blocked"] == 1 and stats["insert_blocked_s"] > 0.5


@pytest.mark.slow
def test_scale_bench_measures_the_real_control_plane(ray_local, monkeypatch):
    import distributed.driver
    from tokenq.bench.scale import SAMPLES_PER_INSERT, control_plane, publish_time

    summaries = []  # the run's summary, whose components the figures are checked against
    real = distributed.driver.train_distributed

    def recorded(*args, **kwargs):
        summaries.append(real(*args, **kwargs))
        return summaries[-1]

    monkeypatch.setattr(distributed.driver, "train_distributed", recorded)
    figures = control_plane(2, seconds=4.0)
    # Synthetic actors inserted through the real limiter and shards, the learner host sampled at the ratio.
    assert figures["scale.actors_2.inserted_per_s"] > 0 and figures["scale.actors_2.updates"] > 0
    assert abs(figures["scale.actors_2.samples_per_insert"] - SAMPLES_PER_INSERT) < 0.3
    # The idle share is the learner's seconds blocked on replay over its seconds in the loop; what is left of the
    # loop, over the updates, is the time per update. (Each figure is rounded: idle and wall to 1 ms, the share to
    # 1e-4, the time per update to 0.01 ms.)
    (summary,) = summaries
    wall, idle, updates = summary["learner_wall_s"], summary["learner_idle_s"], summary["learner_updates"]
    assert wall > 1.0 and updates == figures["scale.actors_2.updates"]
    assert figures["scale.actors_2.learner_idle_frac"] == summary["learner_idle_frac"]
    assert summary["learner_idle_frac"] == pytest.approx(idle / wall, abs=1e-4 + 1e-3 / wall)
    assert summary["learner_ms_per_update"] == pytest.approx(1000 * (wall - idle) / updates, abs=0.01 + 1 / updates)
    assert 0 < figures["scale.actors_2.driver_cpu_frac"] < 1
    assert publish_time(2, reps=1) > 0
