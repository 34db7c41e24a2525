"""Ray-hosted components and an end-to-end local multi-process run. Ray starts once per test session."""

import numpy as np
import pytest

from distributed.weights import WeightStore
from replay.format import decode_sample, pack_arrays


def test_weight_store_never_goes_back():
    store = WeightStore()
    assert store.latest(-1) is None
    assert store.publish(5, "w5")
    assert not store.publish(3, "w3")  # an older version is ignored
    assert not store.publish(5, "again")
    assert store.latest(-1) == (5, "w5", 0)
    assert store.latest(5) is None  # an actor that has 5 is never handed 5 or older
    assert store.latest(7) is None
    store.publish(9, "w9")
    assert store.latest(5) == (9, "w9", 0)
    # A learner restarted from a checkpoint rolls the store back; actors tracking the generation follow it.
    assert store.latest(9, 0) is None
    store.restore(4, "w4")
    assert store.latest(9) is None and store.latest(9, 0) == (4, "w4", 1)
    assert store.latest(4, 1) is None


def test_weight_store_actor_owns_the_weights_it_hands_out(ray_local):
    ray = ray_local
    from distributed.hosts import WeightStoreActor

    @ray.remote
    class Publisher:  # stands in for a learner: publishes, then dies
        def publish(self, store, version, n):
            store.publish.remote(version, {"w": np.arange(n, dtype=np.float32)}, 1.5)
            return True

    store = WeightStoreActor.remote()
    publisher = Publisher.remote()
    ray.get(publisher.publish.remote(store, 2, 300_000))  # large: the arrays travel through the object store
    ray.get(store.publish.remote(1, {"w": np.zeros(3, np.float32)}))  # older: ignored
    ray.kill(publisher)
    version, (got, published_at), _ = ray.get(store.latest.remote(0))
    arrays = ray.get(got)  # still there: the store put them, so it owns them
    assert version == 2 and published_at == 1.5 and arrays["w"][:3].tolist() == [0, 1, 2]
    assert not arrays["w"].flags.writeable  # read zero-copy from the object store
    assert ray.get(store.latest.remote(2)) is None


def test_replay_shard_actor_round_trip(ray_local):
    ray = ray_local
    from distributed.hosts import ReplayShardActor

    shard = ReplayShardActor.remote(8, 2, 4, 1.0, 0, 0.0)
    assert ray.get(shard.sample.remote(2, 0.4)) is None  # empty
    episodes = {
        "prompts": np.full((3, 2), 4),
        "actions": np.array([[5, 2, 0], [6, 6, 2], [7, 2, 0]]),
        "rewards": np.ones((3, 3), np.float32),
        "lengths": np.array([2, 3, 2]),
        "priorities": np.array([1.0, 1.0, 1.0]),
    }
    assert ray.get(shard.add.remote(pack_arrays(episodes))) == 7
    batch = decode_sample(ray.get(shard.sample.remote(4, 1.0))).as_dict()
    assert batch["actions"].shape[0] == 4 and set(batch["slots"].tolist()) <= {0, 1, 2}
    # Give slot 1 all the priority: every later sample is episode 1.
    kept = ray.get(shard.update_priorities.remote(np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([0.0, 5.0, 0.0])))
    assert kept == 3
    again = decode_sample(ray.get(shard.sample.remote(6, 1.0))).as_dict()
    assert again["slots"].tolist() == [1] * 6 and again["actions"][0].tolist() == [6, 6, 2]
    stats = ray.get(shard.stats.remote())
    assert stats["size_episodes"] == 3 and stats["inserted_transitions"] == 7


REQUIRED_TAGS = [
    "charts/episodic_return",
    "charts/success_rate",
    "charts/SPS",
    "charts/epsilon",
    "losses/td_loss",
    "losses/q_values",
    "losses/v_values",
    "perf/learner_updates_per_s",
    "perf/transitions_trained_per_s",
    "replay/size",
    "replay/samples_per_insert",
    "weights/version",
    "weights/actor_lag",
    "faults/actor_restarts",
    "faults/shard_restarts",
    "faults/nonfinite_updates",
    "faults/rollbacks",
    "faults/replay_transitions_lost",
    "timers/supervise",
    "timers/evaluate_record",
    "timers/report",
    "perf/learner_idle_frac",
    "weights/episode_lag_mean",
    "weights/episode_lag_max",
    "replay/sample_age_s",
    "replay/insert_blocked_s",
    "replay/sample_blocked_s",
]


@pytest.mark.slow
def test_local_apex_run_learns_reverse_and_writes_tensorboard(ray_local, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from learner.checkpoint import latest_checkpoint, load_checkpoint
    from tokenq.build import build_spec
    from tokenq.config import load_config
    from tokenq.evaluation import full_eval
    from tokenq.local import train_local

    cfg = load_config(
        "reverse",
        [
            "actors.num_actors=2",
            "replay.num_shards=2",
            "train.eval_every=50",
            # Local runs reach the target after 500 to 700 updates (actor staleness varies with load): stop there.
            "train.total_updates=1500",
            "train.stop_at_target=true",
            "train.max_seconds=120",
            "train.log_every_s=0.5",
            "train.checkpoint_every=100",
        ],
    )
    summary = train_local(cfg, tmp_path, "reverse", build_spec(cfg))
    # An evaluation reached the target (0.95; untrained: 0.0).
    assert summary["time_to_target_s"] is not None
    assert max(h["success_rate"] for h in summary["eval_history"]) >= 0.95
    # Stopped at the target, the run ends on the weights that reached it, as serial mode does, not on the updates the
    # learner made while they were evaluated (success is volatile there: one run's final evaluation
    # measured 0.47 shortly after a version had reached 0.95).
    assert summary["final_weights_version"] == summary["updates_to_target"] <= summary["learner_updates"]
    assert summary["eval"]["success_rate"] >= 0.95
    spec = build_spec(cfg)  # and so does the final checkpoint
    net = spec.acting_network()
    net.load_state_dict(load_checkpoint(latest_checkpoint(tmp_path / "checkpoints")).learner["online"])
    assert full_eval(spec, net)["success_rate"] == summary["eval"]["success_rate"]
    assert (summary["num_actors"], summary["num_shards"], summary["actor_restarts"]) == (2, 2, 0)
    assert (summary["shard_restarts"], summary["learner_restarts"], summary["replay_transitions_lost"]) == (0, 0, 0)
    assert (tmp_path / "replay" / "shard-0.snap").exists() and (tmp_path / "replay" / "shard-1.snap").exists()
    assert summary["weights_version"] > 0 and len(summary["nodes"]) == 1
    assert summary["learner_updates"] > 0 and summary["transitions_trained"] > summary["learner_updates"]

    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    missing = [t for t in REQUIRED_TAGS if t not in tags["scalars"]]
    assert not missing, missing
    assert "samples/values/0" in tags["images"] and acc.Images("samples/values/0")[-1].width >= 800
    # Evaluation runs in its own actor and never pauses training: each one is dated at the training time its weights
    # were published, so time_to_target_s is training time as in serial mode.
    history = summary["eval_history"]
    assert [h["train_s"] for h in history] == sorted(h["train_s"] for h in history)
    # each evaluated a published version (every 10 updates) once it reached the next multiple of eval_every=50
    assert all(h["updates"] % 10 == 0 and h["updates"] >= 50 for h in history[:-1])
    assert summary["train_time_s"] <= summary["wall_time_s"]
    # The learner runs free and the replay's rate limiter holds the ratio.
    assert 0 <= summary["learner_idle_frac"] < 0.5
    # Sampled transitions stay within the error buffer (8192) of 4 per inserted one, give or take what each side
    # had under way when it was let through: a push of at most 32 x 8 transitions (x 4) per actor, or the learner's
    # 2 prefetched batches of at most 32 x 8.
    inserted, sampled = summary["limiter_transitions_inserted"], summary["limiter_transitions_sampled"]
    assert inserted > 0 and abs(sampled - 4.0 * inserted) <= 8192 + 2 * 4 * 32 * 8
    assert summary["episode_lag_max"] >= summary["episode_lag_mean"] >= 0 and summary["sample_age_s"] > 0
    # weights/version: the newest weights published to the actors, as in serial mode; published every 10 updates.
    versions = [e.value for e in acc.Scalars("weights/version")]
    assert all(v % 10 == 0 for v in versions) and versions == sorted(versions)
    text_tags = tags["tensors"]  # text summaries are stored as tensors
    assert any(t.startswith("config") for t in text_tags) and any(t.startswith("samples/greedy") for t in text_tags)
    success = [e.value for e in acc.Scalars("charts/success_rate")]
    assert max(success) >= 0.95

    # `tokenq eval` reloads a local run's checkpoint exactly as it does a serial run's.
    from tokenq.evaluate_run import evaluate_run

    result = evaluate_run(tmp_path, num_prompts=100)
    assert result["success_rate"] >= 0.9 and result["learner_updates"] == summary["learner_updates"]
