"""TensorBoard output shared by both modes: tags by name (CleanRL's namespaces), text, and the V/Q chart.

Drivers report scalars under the names of TAGS; a name means the same in serial and local mode. Names in
LOCAL_ONLY are reported by the Ray driver alone (they count faults that one process cannot have).
"""

from __future__ import annotations

import json
import math

import numpy as np

TAGS = {
    "episodic_return": "charts/episodic_return",  # mean return of the last 200 training episodes
    "success_rate": "charts/success_rate",  # held-out greedy success at each evaluation
    "sps": "charts/SPS",  # env steps (generated tokens) per second of training time
    "epsilon": "charts/epsilon",  # mean exploration rate over the rollout actors
    "td_loss": "losses/td_loss",  # the learner's latest Huber TD loss; NaN or inf when an update was non-finite
    "q_values": "losses/q_values",  # mean Q(s_t, a_t) of the online network over the batch
    "v_values": "losses/v_values",  # mean max_a Q(s_t, a) of the online network over the batch
    "updates_per_s": "perf/learner_updates_per_s",
    "transitions_per_s": "perf/transitions_trained_per_s",
    "replay_size": "replay/size",  # transitions held in replay
    # transitions sampled / transitions inserted once replay.min_size_to_sample was reached (the rate limiter's)
    "samples_per_insert": "replay/samples_per_insert",
    "sample_age_s": "replay/sample_age_s",  # mean seconds between an episode's insert and its sampling
    "insert_blocked_s": "replay/insert_blocked_s",  # total time the rate limiter held actors' inserts
    "sample_blocked_s": "replay/sample_blocked_s",  # total time the rate limiter held the learner's samples
    "learner_idle_frac": "perf/learner_idle_frac",  # the learner's time blocked on replay over its time in the loop
    "weights_version": "weights/version",  # the newest weights version published to the actors (learner updates)
    "actor_lag": "weights/actor_lag",  # learner updates minus the oldest weights version an actor acts with
    # learner updates minus the version that generated each sampled episode, at sampling time
    "episode_lag_mean": "weights/episode_lag_mean",
    "episode_lag_max": "weights/episode_lag_max",
    "nonfinite_updates": "faults/nonfinite_updates",
    "rollbacks": "faults/rollbacks",
    "actor_restarts": "faults/actor_restarts",
    "shard_restarts": "faults/shard_restarts",
    "replay_transitions_lost": "faults/replay_transitions_lost",
    # Held-out greedy evaluation of text tasks (tokenq/evaluation.py: the task's text_metrics)
    "keyword_coverage": "eval/keyword_coverage",  # share of prompt keywords that appear as whole words
    "prior_perplexity": "eval/prior_perplexity",  # perplexity of the generations under the frozen prior
    "distinct_2": "eval/distinct_2",  # distinct bigrams / bigrams over all generations
    "mean_words": "eval/mean_words",  # words per generation (Hugging Face tasks)
    "constraint_success": "eval/constraint_success",  # lipogram: no banned letter and at least task.min_words words
    "mean_return": "eval/mean_return",  # mean greedy return on the held-out prompts
}
EVAL_NAMES = ("keyword_coverage", "prior_perplexity", "distinct_2", "mean_words", "constraint_success", "mean_return")
# The sampled policy's evaluation (where actors sample: learner.backup=soft), beside the greedy one
SAMPLED_NAMES = tuple(f"sampled_{name}" for name in ("success_rate", *EVAL_NAMES))
TAGS |= {name: f"eval_sampled/{name.removeprefix('sampled_')}" for name in SAMPLED_NAMES}
LOSS_NAMES = ("td_loss", "q_values", "v_values")
LOCAL_ONLY = (
    "actor_restarts",
    "shard_restarts",
    "replay_transitions_lost",
    "insert_blocked_s",
    "sample_blocked_s",
    "learner_idle_frac",
)
TIMERS = "timers/"
CONFIG_TEXT = "config"
GREEDY_TEXT = "samples/greedy"
VALUE_IMAGE = "samples/values/"  # + the sample's index


def value_figure(sample: dict):
    """A matplotlib figure of one greedy generation: V(s_t) and Q(s_t, a_t) as lines, r_t as bars, the tokens on
    the x axis and the prompt in the title. `sample` holds prompt, tokens, values, q_taken and rewards."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    tokens = sample["tokens"]
    x = np.arange(len(tokens))
    fig = Figure(figsize=(max(8.0, 0.55 * len(tokens) + 2), 4.2), dpi=100)
    ax = fig.add_subplot()
    ax.bar(x, _finite(sample["rewards"]), width=0.6, color="#9ccc65", label="reward r_t", zorder=1)
    # V is drawn wide and pale under Q: where the greedy token was taken the two coincide and both stay visible.
    ax.plot(
        x, _finite(sample["values"]), "o-", color="#1f5fd6", lw=4, ms=9, alpha=0.45, label="V(s_t) = max_a Q(s_t, a)"
    )
    ax.plot(x, _finite(sample["q_taken"]), "s--", color="#d63a1f", label="Q(s_t, a_t)", zorder=3)
    bad = [t for t, v in enumerate(sample["values"]) if not math.isfinite(v)]
    for t in bad:  # a diverged network's NaN or inf is marked, never drawn as a number
        ax.axvline(t, color="black", linestyle=":", linewidth=1)
    ax.axhline(0.0, color="grey", linewidth=0.8, zorder=2)
    ax.set_xticks(x, [_label(t) for t in tokens], rotation=45 if len(tokens) > 8 else 0, ha="right")
    ax.set_xlabel("generated token a_t (step t)")
    ax.set_ylabel("value")
    title = f"prompt: {sample['prompt']}"
    ax.set_title(title if len(title) < 100 else title[:97] + "...")
    ax.legend(loc="best", fontsize="small")
    if bad:
        ax.text(0.01, 0.02, "dotted: non-finite V/Q", transform=ax.transAxes, fontsize="small")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.2)  # fixed margins: tight_layout draws twice
    return fig


def figure_image(fig) -> np.ndarray:
    """(3, H, W) uint8 pixels of a figure, for TensorBoard."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))


def _finite(values: list[float]) -> list[float]:
    return [v if math.isfinite(v) else np.nan for v in values]


def _label(token: str) -> str:
    return token if len(token) <= 12 else token[:11] + "…"


class MetricsWriter:
    """A thin wrapper over torch's SummaryWriter: scalars by tag, the config and greedy samples as text, and one
    V/Q chart per sample prompt."""

    def __init__(self, log_dir: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir, flush_secs=5)

    def scalars(self, values: dict[str, float | None], step: int) -> None:
        """None means "not measured yet" and is skipped; NaN and inf are written, so a diverging loss shows."""
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), step)

    def config(self, config: dict) -> None:
        self.writer.add_text(CONFIG_TEXT, "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def greedy_samples(self, samples: list[dict], step: int, charts: bool = True) -> None:
        """The samples as a text table, and (with `charts`) one V/Q chart each."""
        if not samples:
            return
        rows = ["| prompt | generation | return |", "| --- | --- | --- |"]
        rows += [f"| `{s['prompt']}` | `{s['generation']}` | {s['return']:.2f} |" for s in samples]
        self.writer.add_text(GREEDY_TEXT, "\n".join(rows), step)
        for i, sample in enumerate(samples if charts else []):
            self.writer.add_image(f"{VALUE_IMAGE}{i}", figure_image(value_figure(sample)), step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
