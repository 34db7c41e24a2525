"""TensorBoard output shared by both drivers. Tag names are constants (CleanRL's namespaces)."""

from __future__ import annotations

import json

import numpy as np

EPISODIC_RETURN = "charts/episodic_return"
SUCCESS_RATE = "charts/success_rate"
SPS = "charts/SPS"
EPSILON = "charts/epsilon"
TD_LOSS = "losses/td_loss"
Q_VALUES = "losses/q_values"
V_VALUES = "losses/v_values"
UPDATES_PER_S = "perf/learner_updates_per_s"
TRANSITIONS_PER_S = "perf/transitions_trained_per_s"
REPLAY_SIZE = "replay/size"
SAMPLES_PER_INSERT = "replay/samples_per_insert"
WEIGHTS_VERSION = "weights/version"
ACTOR_LAG = "weights/actor_lag"
ACTOR_RESTARTS = "faults/actor_restarts"
SHARD_RESTARTS = "faults/shard_restarts"
NONFINITE_UPDATES = "faults/nonfinite_updates"
ROLLBACKS = "faults/rollbacks"
TRANSITIONS_LOST = "faults/replay_transitions_lost"
TIMERS = "timers/"
CONFIG_TEXT = "config"
GREEDY_TEXT = "samples/greedy"
VALUE_IMAGE = "samples/values"


def render_values(values: list[float], q_taken: list[float], height: int = 120, step_px: int = 24) -> np.ndarray:
    """A (3, H, W) uint8 line chart: V(s_t) in blue, Q(s_t, a_t) in red, along one greedy generation."""
    # A diverged network's NaN or inf must not break the chart: draw those points on the zero line.
    values = [v if np.isfinite(v) else 0.0 for v in values]
    q_taken = [v if np.isfinite(v) else 0.0 for v in q_taken]
    T = max(1, len(values))
    width = step_px * (T + 1)
    img = np.full((3, height, width), 255, dtype=np.uint8)
    lo = min(0.0, *values, *q_taken)
    hi = max(1e-6, *values, *q_taken)

    def y_of(v: float) -> int:
        return height - 6 - int((v - lo) / (hi - lo) * (height - 11))

    img[:, y_of(0.0), :] = 200  # the zero line

    for series, colour in ((values, (40, 80, 220)), (q_taken, (220, 40, 40))):
        for t in range(len(series)):
            x0, y0 = step_px * (t + 1), y_of(series[t])
            if t + 1 < len(series):
                x1, y1 = step_px * (t + 2), y_of(series[t + 1])
                for s in np.linspace(0.0, 1.0, 2 * step_px):
                    img[:, int(round(y0 + s * (y1 - y0))), int(round(x0 + s * (x1 - x0)))] = colour
            img[:, max(0, y0 - 2) : y0 + 3, max(0, x0 - 2) : x0 + 3] = np.array(colour)[:, None, None]
    return img


class MetricsWriter:
    """A thin wrapper over torch's SummaryWriter: scalars by tag, the config and greedy samples as text."""

    def __init__(self, log_dir: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir, flush_secs=5)

    def scalars(self, values: dict[str, float | None], step: int) -> None:
        for tag, value in values.items():
            if value is not None and np.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)

    def config(self, config: dict) -> None:
        self.writer.add_text(CONFIG_TEXT, "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def greedy_samples(self, samples: list[dict], step: int) -> None:
        if not samples:
            return
        rows = ["| prompt | generation | return |", "| --- | --- | --- |"]
        rows += [f"| `{s['prompt']}` | `{s['generation']}` | {s['return']:.2f} |" for s in samples]
        self.writer.add_text(GREEDY_TEXT, "\n".join(rows), step)
        self.writer.add_image(VALUE_IMAGE, render_values(samples[0]["values"], samples[0]["q_taken"]), step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
