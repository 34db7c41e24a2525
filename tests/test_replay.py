import numpy as np
import pytest

from replay.episodes import EpisodeBatch
from replay.shard import ReplayShard, importance_weights
from replay.sum_tree import SumTree


def test_sum_tree_totals_and_proportions():
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    assert tree.total == 10.0
    assert tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99])).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    tree.update(np.array([3]), np.array([0.5]))
    assert tree.total == 6.5
    counts = np.bincount(tree.sample(np.random.default_rng(0), 65_000), minlength=5)
    np.testing.assert_allclose(counts / 65_000, [1 / 6.5, 2 / 6.5, 3 / 6.5, 0.5 / 6.5, 0.0], atol=0.005)


def test_importance_weights_by_hand():
    # N = 4, P = [0.5, 0.25], beta = 1: w = 1 / (N P) = [0.5, 1.0], normalised by the max.
    np.testing.assert_allclose(importance_weights(np.array([0.5, 0.25]), 4, 1.0), [0.5, 1.0])
    # beta = 0.5: w = (N P)^-0.5 = [2^-0.5, 1]
    np.testing.assert_allclose(importance_weights(np.array([0.5, 0.25]), 4, 0.5), [2**-0.5, 1.0], rtol=1e-6)


def _episodes(n, first, length=3):
    return EpisodeBatch(
        prompts=np.full((n, 2), 4),
        actions=np.arange(first, first + n)[:, None].repeat(length, 1),
        rewards=np.ones((n, length), np.float32),
        lengths=np.full(n, length),
        priorities=np.ones(n),
    )


def test_fifo_eviction_and_capacity():
    shard = ReplayShard(capacity=4, prompt_len=2, max_steps=5, alpha=1.0, seed=0)
    shard.add(_episodes(3, first=10))
    shard.add(_episodes(3, first=20))
    assert shard.size == 4 and shard.num_transitions == 12
    # the two oldest (10, 11) were evicted
    assert sorted(shard.actions[:, 0].tolist()) == [12, 20, 21, 22]
    assert shard.inserted_transitions == 18


def test_priorities_steer_sampling_and_stale_updates_are_dropped():
    shard = ReplayShard(capacity=2, prompt_len=2, max_steps=3, alpha=1.0, seed=0, priority_eps=0.0)
    shard.add(_episodes(2, first=10))
    batch = shard.sample(2, beta=1.0)
    shard.update_priorities(np.array([0, 1]), shard.generations[[0, 1]], np.array([3.0, 1.0]))
    counts = np.bincount(np.concatenate([shard.sample(4, 0.4).slots for _ in range(2000)]), minlength=2)
    assert abs(counts[0] / counts.sum() - 0.75) < 0.03
    # slot 0 is overwritten; an update computed for its old episode must not land on the new one
    shard.add(_episodes(1, first=30))
    kept = shard.update_priorities(batch.slots, batch.generations, np.full(2, 100.0))
    assert kept == int((batch.slots == 1).sum())
    assert shard.tree.get(np.array([0]))[0] == pytest.approx(1.0)  # the new episode keeps its own priority


def test_shard_memory_is_bounded_by_capacity():
    # capacity 64, prompts of 2, 5 steps: prompts, actions, rewards 64 * (2 + 5 + 5) * 4 bytes (int32, int32,
    # float32); lengths 64 * 4 (int32); generations, versions, insert times 3 * 64 * 8 (int64, int64, float64); the
    # sum tree's 2 * 64 float64 nodes (64 is a power of two). 3072 + 256 + 1536 + 1024 = 5888 bytes.
    by_hand = 64 * (2 + 5 + 5) * 4 + 64 * 4 + 3 * 64 * 8 + 2 * 64 * 8
    shard = ReplayShard(capacity=64, prompt_len=2, max_steps=5, alpha=0.6, seed=0)
    assert shard.nbytes == by_hand == 5888
    for i in range(50):  # 800 episodes through 64 slots
        shard.add(_episodes(16, first=i))
    assert shard.nbytes == 5888 and shard.size == 64
    assert shard.num_transitions == 64 * 3


def test_sum_tree_round_off_never_lands_on_an_empty_slot():
    # A shard of capacity 8 holding 3 episodes: slots 3..7 are empty. A mass at (or a hair past) the total, as
    # float round-off in `total * (i + u) / n` can produce, must land on the last filled slot, never on slot 7.
    tree = SumTree(8)
    tree.update(np.arange(3), np.array([0.1, 0.2, 0.3]))
    total = tree.total
    masses = np.array([total, np.nextafter(total, np.inf), total * (1 + 1e-12), 0.1 + 0.2 + 0.3])
    assert tree.find(masses).tolist() == [2, 2, 2, 2]
    # The shard built on it: every sampled slot is filled, so importance weights stay finite.
    shard = ReplayShard(8, 2, 3, alpha=1.0, seed=0)
    shard.add(_episodes(3, first=4))
    shard.tree.nodes[1] = np.nextafter(shard.tree.nodes[1], np.inf)  # the root a round-off above its leaves' sum
    batch = shard.sample(64, 0.4)
    assert set(batch.slots.tolist()) <= {0, 1, 2} and np.isfinite(batch.weights).all()
