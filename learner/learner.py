"""The Double-DQN learner: online and target Q-networks, AdamW, one update per sampled batch of whole sequences.

Plain Python (no ray): the serial driver calls it directly, distributed/ hosts it as a Ray actor.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from learner.losses import double_dqn_loss, sequence_priorities, valid_mask
from learner.model import QNetConfig, QNetwork


@dataclass
class LearnerConfig:
    batch_size: int = 32  # episodes per update
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    gamma: float = 0.99
    n_step: int = 1  # n-step returns; n > 1 propagates faster but is biased off-policy (no correction)
    huber_delta: float = 1.0
    target_update_every: int = 25  # hard copy every K updates (when target_tau == 0)
    target_tau: float = 0.0  # Polyak factor per update; 0 means hard copies
    device: str = "auto"  # "auto" (cuda when present), "cpu" or "cuda"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Learner:
    def __init__(self, cfg: LearnerConfig, net_cfg: QNetConfig, seed: int = 0):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        torch.manual_seed(seed)
        self.online = QNetwork(net_cfg).to(self.device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.online.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )
        self.updates = 0
        self.transitions_trained = 0
        self.autocast = torch.autocast(
            device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"
        )

    def _tensor(self, x: np.ndarray, dtype=None) -> torch.Tensor:
        return torch.tensor(x, dtype=dtype).to(self.device, non_blocking=True)  # a copy: Ray's arrays are read-only

    def update(self, batch) -> tuple[dict[str, float], np.ndarray]:
        """One Double-DQN update on a SampledBatch; returns metrics and new per-sequence priorities (B,)."""
        prompts = self._tensor(batch.prompts, torch.long)
        a_t = self._tensor(batch.actions, torch.long)
        r_t = self._tensor(batch.rewards, torch.float32)
        lengths = self._tensor(batch.lengths, torch.long)
        weights = self._tensor(batch.weights, torch.float32)
        dec_in = a_t[:, :-1]  # Q(s_0..s_{T-1}) needs a_0..a_{T-2}
        with self.autocast:
            q_online_t = self.online(prompts, dec_in)  # (B, T, V)
            with torch.no_grad():
                q_target_t = self.target(prompts, dec_in)  # (B, T, V)
        out = double_dqn_loss(
            q_online_t.float(),
            q_target_t.float(),
            a_t,
            r_t,
            lengths,
            weights,
            self.cfg.gamma,
            self.cfg.n_step,
            self.cfg.huber_delta,
        )
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.online.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.updates += 1
        n_valid = int(batch.lengths.sum())
        self.transitions_trained += n_valid
        self._sync_target()
        mask = valid_mask(lengths, a_t.shape[1])
        metrics = {
            "td_loss": float(out.loss.detach()),
            "q_values": float((out.q_taken_t * mask).sum()) / n_valid,
            "v_values": float((out.v_online_t * mask).sum()) / n_valid,
            "abs_td": float(out.td_t.abs().sum()) / n_valid,
            "grad_norm": float(grad_norm),
        }
        return metrics, sequence_priorities(out.td_t, lengths).float().cpu().numpy()

    def _sync_target(self) -> None:
        if self.cfg.target_tau > 0:
            with torch.no_grad():
                for p_t, p_o in zip(self.target.parameters(), self.online.parameters(), strict=False):
                    p_t.lerp_(p_o, self.cfg.target_tau)
        elif self.updates % self.cfg.target_update_every == 0:
            self.target.load_state_dict(self.online.state_dict())

    def get_weights(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the online network's weights, for actors."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.online.state_dict().items()}

    def state_dict(self) -> dict:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "transitions_trained": self.transitions_trained,
        }

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.transitions_trained = int(state["transitions_trained"])
