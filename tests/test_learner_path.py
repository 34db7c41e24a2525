"""The learner's host-device path: metrics read every K updates, batches staged to the device, compiled forwards."""

import numpy as np
import pytest
import torch

from learner.config import LearnerConfig, QNetConfig
from learner.learner import METRIC_NAMES, Learner
from learner.staging import FIELDS, StagedBatch
from replay.episodes import SampledBatch

NET = QNetConfig(vocab_size=12, max_prompt_len=6, max_gen_len=8, d_model=32, n_heads=2, n_layers=1)


def batches(n: int, seed: int = 0, B: int = 4) -> list[SampledBatch]:
    """The reverse task's shapes: prompts (B, 6) of tokens 4..11, episodes of 1..8 steps, T the longest."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lengths = rng.integers(1, 9, B)
        T = int(lengths.max())
        out.append(
            SampledBatch(
                prompts=rng.integers(4, 12, (B, 6)),
                actions=rng.integers(4, 12, (B, T)),
                rewards=rng.random((B, T)).astype(np.float32),
                lengths=lengths,
                weights=np.ones(B, np.float32),
                slots=np.arange(B),
                generations=np.arange(B) + 1,
            )
        )
    return out


def learner(**kw) -> Learner:
    return Learner(LearnerConfig(device="cpu", **kw), NET, seed=0)


def same_weights(a: Learner, b: Learner) -> bool:
    params_b = dict(b.online.named_parameters())
    return all(torch.equal(p, params_b[n]) for n, p in a.online.named_parameters())


def test_metrics_come_every_k_updates_as_means_of_the_same_losses():
    every3, every1 = learner(metrics_every=3), learner(metrics_every=1)
    reports3, losses1 = [], []
    for b in batches(3):
        m3, p3 = every3.update(b)
        m1, p1 = every1.update(b)
        np.testing.assert_array_equal(p3, p1)
        reports3.append(m3)
        losses1 += m1["td_loss_per_update"]
        assert m1["td_loss_per_update"] == [(every1.updates, m1["td_loss"])]
    assert reports3[:2] == [None, None]
    report = reports3[2]
    assert report["td_loss_per_update"] == losses1  # [(1, l1), (2, l2), (3, l3)], bit for bit
    assert [u for u, _ in losses1] == [1, 2, 3]
    assert report["td_loss"] == pytest.approx(np.mean([loss for _, loss in losses1]), rel=1e-12)
    assert set(report) == {*METRIC_NAMES, "td_loss_per_update"}
    assert same_weights(every3, every1)


def test_flush_returns_the_updates_not_yet_reported_then_none():
    lrn = learner(metrics_every=3)
    got = [lrn.update(b)[0] for b in batches(5)]
    assert got[3] is None and got[4] is None
    left = lrn.flush_metrics()
    assert [u for u, _ in left["td_loss_per_update"]] == [4, 5]
    assert left["td_loss"] == pytest.approx(np.mean([loss for _, loss in left["td_loss_per_update"]]), rel=1e-12)
    assert lrn.flush_metrics() is None


def test_a_nonfinite_update_reports_at_once_and_keeps_the_pending_metrics():
    lrn = learner(metrics_every=3)
    good, bad = batches(2)
    lrn.update(good)
    bad.rewards[:, 0] = np.nan
    metrics, priorities = lrn.update(bad)
    assert priorities is None and metrics["nonfinite"] == 1.0 and np.isnan(metrics["td_loss"])
    assert [u for u, _ in lrn.flush_metrics()["td_loss_per_update"]] == [1]


def test_updating_on_a_staged_batch_is_updating_on_the_batch():
    direct, staged = learner(metrics_every=1), learner(metrics_every=1)
    for b in batches(3):
        s = staged.stage(b)
        assert isinstance(s, StagedBatch) and s.ready is None and s.num_transitions == int(b.lengths.sum())
        assert s.prompts.dtype == torch.long and s.rewards.dtype == torch.float32
        m_direct, p_direct = direct.update(b)
        m_staged, p_staged = staged.update(s)
        assert m_direct == m_staged
        np.testing.assert_array_equal(p_direct, p_staged)
    assert same_weights(direct, staged)


@pytest.mark.slow
def test_compiled_forwards_give_the_same_losses():
    plain, compiled = learner(metrics_every=1), learner(metrics_every=1, compile=True)
    assert compiled.online_fwd is not compiled.online
    assert list(compiled.online.state_dict()) == list(plain.online.state_dict())  # no _orig_mod. prefixes
    for b in batches(3):  # T differs between the batches: one dynamic graph
        loss_plain = plain.update(b)[0]["td_loss"]
        loss_compiled = compiled.update(b)[0]["td_loss"]
        assert loss_compiled == pytest.approx(loss_plain, abs=1e-4)


def host_tensors(b: SampledBatch) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(getattr(b, name), dtype=dt) for name, dt in FIELDS.items()}


@pytest.mark.gpu
def test_staging_on_cuda_copies_through_reused_buffers_and_updates_the_same():
    cfg = LearnerConfig(device="cuda", metrics_every=1)
    direct, staged = Learner(cfg, NET, seed=0), Learner(cfg, NET, seed=0)
    small, large = batches(4, B=8), batches(2, seed=1, B=16)  # the larger batches grow the pinned buffers
    pairs = [(b, staged.stage(b)) for b in small[:2]]  # two staged ahead: both buffer sets in use
    pairs += [(b, staged.stage(b)) for b in [*small[2:], *large]]
    for b, s in pairs:
        assert s.ready is not None and all(getattr(s, name).device.type == "cuda" for name in FIELDS)
        s.ready.synchronize()
        for name, expected in host_tensors(b).items():
            assert torch.equal(getattr(s, name).cpu(), expected), name  # not overwritten by a later stage
    # bf16 autocast and SDPA's backward are not bit-deterministic on CUDA: two learners agree to rounding
    for b in [*small, *large]:
        m_direct, p_direct = direct.update(b)
        m_staged, p_staged = staged.update(staged.stage(b))
        assert m_staged["td_loss"] == pytest.approx(m_direct["td_loss"], rel=1e-3, abs=1e-5)
        np.testing.assert_allclose(p_staged, p_direct, rtol=1e-3, atol=1e-4)
