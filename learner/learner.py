"""The Double-DQN learner: online and target Q-networks, AdamW, one update per sampled batch of whole sequences.

Plain Python (no ray): the serial driver calls it directly, distributed/hosts.py hosts it as a Ray actor. An update
syncs with the host once (its priorities and whether it was finite); the metrics stay on the device and are read
every `metrics_every` updates.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from learner.config import LearnerConfig, QNetConfig
from learner.lora import check_base
from learner.losses import double_dqn_loss, sequence_priorities, soft_q_loss, valid_mask
from learner.model import make_network
from learner.qfunction import QFunction
from learner.staging import StagedBatch, Stager
from replay.episodes import SampledBatch

METRIC_NAMES = ("td_loss", "q_values", "v_values", "abs_td", "grad_norm")


class DivergedError(RuntimeError):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Learner:
    def __init__(self, cfg: LearnerConfig, net_cfg: QNetConfig, seed: int = 0, net: QFunction | None = None):
        """`net`: an online network already built (default: built from net_cfg)."""
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        torch.manual_seed(seed)
        self.online: QFunction = (net if net is not None else make_network(net_cfg)).to(self.device)
        if self.online.cfg.grad_checkpointing:
            self.online.enable_grad_checkpointing()
        self.target = self.online.make_target()
        # self.online and self.target stay the plain modules: state_dict names get no "_orig_mod." prefix.
        self.online_fwd = compiled_forward(self.online) if cfg.compile else self.online
        self.q_pair = (  # (online Q, target Q, log pi_ref): one frozen trunk pass for all where the network has one
            compiled_pair(self.online_fwd, compiled_forward(self.target))
            if cfg.compile
            else lambda prompts, actions: self.online.q_pair(self.target, prompts, actions)
        )
        self.trainable = [p for p in self.online.parameters() if p.requires_grad]  # with LoRA: adapters and heads
        self.optimizer = torch.optim.AdamW(
            self.online.param_groups(cfg), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )
        self.updates = 0
        self.transitions_trained = 0
        self.nonfinite_updates = 0  # skipped because the loss, the Q-values or the gradient held a NaN or inf
        self.rollbacks = 0
        self._bad_in_row = 0
        self._rollbacks_in_row = 0
        self._good: dict | None = None
        self._pending = PendingMetrics()
        self._stager = Stager(self.device)
        self.autocast = torch.autocast(
            device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"
        )

    def stage(self, batch: SampledBatch) -> StagedBatch:
        """Copy a SampledBatch to the device; on CUDA asynchronously, so staging the next batch before updating on
        the current one overlaps the copy with the update."""
        return self._stager(batch)

    def update(self, batch: SampledBatch | StagedBatch) -> tuple[dict[str, float] | None, np.ndarray | None]:
        """One Double-DQN update; returns (metrics, new per-sequence priorities (B,)).

        metrics is None except every `metrics_every` updates: then the means since the last report, with each
        update's loss in "td_loss_per_update". A NaN or inf in the loss, the online Q-values or the gradient skips
        the update (its metrics at once, priorities None: the replay keeps the old ones); `max_nonfinite` in a row
        roll the learner back to the last `mark_good` state."""
        b = batch if isinstance(batch, StagedBatch) else self.stage(batch)
        b.wait()
        dec_in = b.actions[:, :-1]  # Q(s_0..s_{T-1}) needs a_0..a_{T-2}
        with self.autocast:
            q_online_t, q_target_t, log_ref_t = self.q_pair(b.prompts, dec_in)  # (B, T, V) each
        c = self.cfg
        args = (b.actions, b.rewards, b.lengths, b.weights, c.gamma, c.n_step)
        if c.backup == "soft":  # log_ref_t None: a network without a reference model, pi_ref uniform
            out = soft_q_loss(q_online_t.float(), q_target_t.float(), log_ref_t, *args, c.beta, c.huber_delta)
        else:
            out = double_dqn_loss(q_online_t.float(), q_target_t.float(), *args, c.huber_delta)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.cfg.grad_clip)
        finite = torch.isfinite(out.loss) & torch.isfinite(grad_norm) & torch.isfinite(q_online_t).all()
        priorities = sequence_priorities(out.td_t, b.lengths).float()  # (B,)
        loss = out.loss.detach().float()
        host = torch.cat([priorities, loss[None], finite.float()[None]]).cpu().numpy()  # the update's one host sync
        if not host[-1]:
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip(float(host[-2])), None
        self._bad_in_row = 0
        self.optimizer.step()
        self._bound_params()
        self.updates += 1
        self.transitions_trained += b.num_transitions
        self._sync_target()
        n_valid = max(b.num_transitions, 1)
        mask = valid_mask(b.lengths, b.actions.shape[1])
        row = torch.stack(  # in METRIC_NAMES order, on the device
            [
                loss,
                (out.q_taken_t.float() * mask).sum() / n_valid,
                (out.v_online_t.float() * mask).sum() / n_valid,
                out.td_t.abs().sum() / n_valid,
                grad_norm.float(),
            ]
        )
        self._pending.add(self.updates, row)
        metrics = self.flush_metrics() if len(self._pending) >= self.cfg.metrics_every else None
        return metrics, host[:-2]

    def flush_metrics(self) -> dict | None:
        """The means of the updates not yet reported, with "td_loss_per_update": [(update, td_loss), ...]; None
        when there are none. Drivers call it before a checkpoint and at the end."""
        return self._pending.report()

    @torch.no_grad()
    def _bound_params(self) -> None:
        """Project the parameter groups that carry a "max" (QFunction.param_groups) back under it after a step."""
        for group in self.optimizer.param_groups:
            if "max" in group:
                for p in group["params"]:
                    p.clamp_(max=group["max"])

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

    def set_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Make `weights` (as get_weights returns them) the online network's, and hard-copy them to the target."""
        self.online.load_state_dict(weights)
        self.target.load_state_dict(self.online.state_dict())

    def state_dict(self, device: str | None = None) -> dict:
        """Networks, optimizer and counters; `device="cpu"` returns copies on the CPU."""
        move = (lambda x: _to(x, device)) if device else (lambda x: x)
        reference = self.online.base_reference()
        base = {"base": reference} if reference is not None else {}  # a LoRA network's base, checked on loading
        return base | {
            "online": move(self.online.state_dict()),
            "target": move(self.target.state_dict()),
            "optimizer": move(self.optimizer.state_dict()),
            "updates": self.updates,
            "transitions_trained": self.transitions_trained,
            "nonfinite_updates": self.nonfinite_updates,
            "rollbacks": self.rollbacks,
            "network": dataclasses.asdict(self.online.cfg),  # what init.from_run builds the network from
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


class PendingMetrics:
    """Successful updates' metrics kept on the device, (len(METRIC_NAMES),) a row, until they are reported: then
    they cross to the host in one transfer."""

    def __init__(self):
        self.updates: list[int] = []
        self.rows: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, update: int, row: torch.Tensor) -> None:
        self.updates.append(update)
        self.rows.append(row)

    def report(self) -> dict | None:
        if not self.rows:
            return None
        values = torch.stack(self.rows).cpu().numpy().astype(np.float64)  # (K, len(METRIC_NAMES))
        means = {name: float(values[:, i].mean()) for i, name in enumerate(METRIC_NAMES)}
        per_update = [(u, float(v)) for u, v in zip(self.updates, values[:, 0], strict=True)]
        self.updates, self.rows = [], []
        return means | {"td_loss_per_update": per_update}


def compiled_forward(net: torch.nn.Module):
    """`net`'s forward(prompts, actions) compiled once for every T: batches differ in T (the longest sampled
    episode), so the actions' length is marked dynamic, while the batch and prompt sizes, fixed in a run, compile
    as constants (dynamic=True would make them symbols too, and specialise on a first batch's T - 1 == P). A size
    that does change later (text prompts padded per batch) becomes dynamic after one recompile."""
    fwd = torch.compile(net)

    def forward(prompts: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        torch._dynamo.mark_dynamic(actions, 1)
        return fwd(prompts, actions)

    return forward


def compiled_pair(online, target):
    """learner.compile's (online Q, target Q, None): both forwards compiled, the target's under no_grad; no reference
    (config.py refuses learner.compile with a Hugging Face model's soft backup)."""

    def pair(prompts: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        q = online(prompts, actions)
        with torch.no_grad():
            return q, target(prompts, actions), None

    return pair


def _to(obj, device: str):
    """A copy of nested containers with every tensor on `device`."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to(device, copy=True)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    return obj
