"""The Double-DQN learner: online and target Q-networks, AdamW, one update per sampled batch of whole sequences.

Plain Python (no ray): the serial driver calls it directly, distributed/hosts.py hosts it as a Ray actor.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from learner.config import LearnerConfig, QNetConfig
from learner.lora import AdapterTarget, check_base
from learner.losses import double_dqn_loss, sequence_priorities, valid_mask
from learner.model import make_network


class DivergedError(RuntimeError):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Learner:
    def __init__(self, cfg: LearnerConfig, net_cfg: QNetConfig, seed: int = 0, net: torch.nn.Module | None = None):
        """`net`: an online network already built (default: built from net_cfg)."""
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        torch.manual_seed(seed)
        self.online = (net if net is not None else make_network(net_cfg)).to(self.device)
        if cfg.grad_checkpointing:
            self.online.enable_grad_checkpointing()
        self.target = make_target(self.online)
        self.trainable = [p for p in self.online.parameters() if p.requires_grad]  # with LoRA: adapters and heads
        self.optimizer = torch.optim.AdamW(
            param_groups(self.online, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )
        self.updates = 0
        self.transitions_trained = 0
        self.nonfinite_updates = 0  # skipped because the loss, the Q-values or the gradient held a NaN or inf
        self.rollbacks = 0
        self._bad_in_row = 0
        self._rollbacks_in_row = 0
        self._good: dict | None = None
        self.autocast = torch.autocast(
            device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"
        )

    def _tensor(self, x: np.ndarray, dtype=None) -> torch.Tensor:
        return torch.tensor(x, dtype=dtype).to(self.device, non_blocking=True)  # a copy: received arrays are read-only

    def update(self, batch) -> tuple[dict[str, float], np.ndarray | None]:
        """One Double-DQN update on a SampledBatch; returns metrics and new per-sequence priorities (B,).

        A NaN or inf in the loss, the online Q-values or the gradient skips the update (priorities None: the
        replay keeps the old ones); `max_nonfinite` in a row roll the learner back to the last `mark_good` state."""
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
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.cfg.grad_clip)
        finite = torch.isfinite(out.loss) & torch.isfinite(grad_norm) & torch.isfinite(q_online_t).all()
        if not bool(finite):  # the update's one extra host sync
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip(float(out.loss.detach())), None
        self._bad_in_row = 0
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

    def _skip(self, loss: float) -> dict[str, float]:
        """Count a non-finite update; its loss (NaN, inf or a finite loss with a non-finite gradient) is returned so
        that drivers show it instead of dropping it."""
        self.nonfinite_updates += 1
        self._bad_in_row += 1
        if self._bad_in_row >= self.cfg.max_nonfinite:
            if self._good is None or self._rollbacks_in_row >= self.cfg.max_rollbacks:
                raise DivergedError(
                    f"training diverged: {self.nonfinite_updates} updates had a NaN or inf loss, Q-value or "
                    f"gradient and {self._rollbacks_in_row} rollbacks to the last good state did not help; lower "
                    "learner.lr or check the rewards"
                )
            faults = self.nonfinite_updates, self.rollbacks + 1  # fault counters survive the rollback
            self.load_state_dict(copy.deepcopy(self._good))  # the optimizer would alias the tensors it is given
            self.nonfinite_updates, self.rollbacks = faults
            self._rollbacks_in_row += 1
            self._bad_in_row = 0
        return {"td_loss": loss if not np.isfinite(loss) else float("nan"), "nonfinite": 1.0}

    def mark_good(self) -> dict:
        """Remember the current state (a CPU copy) as the one to roll back to, and return it; drivers call it at
        each checkpoint."""
        self._good = self.state_dict(device="cpu")
        self._rollbacks_in_row = 0
        return self._good

    def _sync_target(self) -> None:
        if self.cfg.target_tau > 0:
            target = dict(self.target.named_parameters())
            with torch.no_grad():
                for name, p_o in self.online.named_parameters():
                    if name in target:
                        target[name].lerp_(p_o, self.cfg.target_tau)
        elif self.updates % self.cfg.target_update_every == 0:
            self.target.load_state_dict(self.online.state_dict())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.trainable)

    def get_weights(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the online network's weights (with LoRA: adapters and heads), for actors."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.online.state_dict().items()}

    def state_dict(self, device: str | None = None) -> dict:
        """Networks, optimizer and counters; `device="cpu"` returns copies on the CPU."""
        move = (lambda x: _to(x, device)) if device else (lambda x: x)
        base = {"base": self.online.base_reference()} if getattr(self.online.cfg, "lora_rank", 0) else {}
        return base | {
            "online": move(self.online.state_dict()),
            "target": move(self.target.state_dict()),
            "optimizer": move(self.optimizer.state_dict()),
            "updates": self.updates,
            "transitions_trained": self.transitions_trained,
            "nonfinite_updates": self.nonfinite_updates,
            "rollbacks": self.rollbacks,
        }

    def load_state_dict(self, state: dict) -> None:
        if "base" in state:
            check_base(state["base"], self.online.base_reference(), "the learner state")
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.transitions_trained = int(state["transitions_trained"])
        self.nonfinite_updates = int(state.get("nonfinite_updates", self.nonfinite_updates))
        self.rollbacks = int(state.get("rollbacks", self.rollbacks))


def param_groups(online: torch.nn.Module, cfg: LearnerConfig) -> list[dict]:
    """The trainable parameters; the heads a Hugging Face model gains at `head_lr`, its token bias at
    `token_bias_lr`, when they are set."""
    named = [(n, p) for n, p in online.named_parameters() if p.requires_grad]
    if not hasattr(online, "lm"):
        return [{"params": [p for _, p in named]}]
    head_lr = cfg.head_lr or cfg.lr
    groups = [
        {"params": [p for n, p in named if n.startswith("lm.")], "lr": cfg.lr},
        {"params": [p for n, p in named if not n.startswith("lm.") and n != "token_bias"], "lr": head_lr},
        {"params": [p for n, p in named if n == "token_bias"], "lr": cfg.token_bias_lr or head_lr},
    ]
    return [g for g in groups if g["params"]]


def make_target(online: torch.nn.Module):
    """The target network: a frozen copy of the online one; with LoRA, a copy of its adapters and heads only."""
    if getattr(online.cfg, "lora_rank", 0) > 0:
        return AdapterTarget(online)
    return copy.deepcopy(online).requires_grad_(False)


def _to(obj, device: str):
    """A copy of nested containers with every tensor on `device`."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to(device, copy=True)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    return obj
