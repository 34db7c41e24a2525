"""The learner's configuration: the Q-network's shape, a Hugging Face model's settings, and the Double-DQN
learner's settings.

Plain dataclasses (no torch), so that reading and checking a config costs nothing; each field's comment is its
documentation (`tokenq config` prints it).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def problems_of(section: str, obj, checks: list[tuple[bool, str]], at_least_one: tuple[str, ...] = ()) -> list[str]:
    """A config section's invalid values: the sentences of the failed `checks`, then every field of `at_least_one`
    below 1, each named `section.field`."""
    found = [message for ok, message in checks if not ok]
    for name in at_least_one:
        value = getattr(obj, name)
        if value < 1:
            found.append(f"{section}.{name} must be at least 1, got {value}")
    return found


Q_HEADS = ("plain", "dueling", "dueling_max", "separate", "soft")


@dataclass
class ModelConfig:
    """The `model` section: tokenq's own network's shape (a Hugging Face model has its own, and `tokenq pretrain`
    with pretrain.hf_arch builds one of this width and depth) and, for both, the Q head. Its sizes (vocabulary,
    prompt and episode lengths, special tokens) are the task's, set when the run starts (QNetConfig)."""

    d_model: int = 64  # width of every layer
    n_heads: int = 4  # attention heads (d_model must divide by it)
    n_layers: int = 1  # decoder layers (the whole stack for arch="decoder")
    n_enc_layers: int = 1  # encoder layers, arch="encdec" only
    mlp_ratio: int = 4  # MLP hidden width / d_model
    arch: str = "encdec"  # "encdec" or "decoder"
    tie_embeddings: bool = False  # the Q head shares the token embedding matrix (Press & Wolf 2017)
    copy_head: bool = False  # add g(s) to Q(s, a) for every token a of the prompt (a pointer, See et al. 2017)
    # How Q(s, .) is read from the network's output head A(s, .) (a Hugging Face LM's logits): "plain" Q = A;
    # "dueling" Q = V(s) + A - mean A (Wang et al. 2016; tokenq's network); "dueling_max" Q = V(s) + A - max A, so the
    # greedy action's Q is V(s) and, on a language model, the warm start's greedy policy is the LM's; "separate"
    # (Hugging Face models) a new linear Q head initialised from the LM head; "soft" (Hugging Face models with
    # learner.backup=soft and hf.train_layers) Q = V(s) + beta (log pi - log pi_ref), the trained top's policy
    # against the frozen reference's, so Q starts at 0 and the soft policy log pi_ref + Q / beta starts at the model's.
    # V heads start at 0.
    q_head: str = "plain"

    def problems(self) -> list[str]:
        """This section's invalid values, each one sentence."""
        return problems_of(
            "model",
            self,
            [
                (self.q_head in Q_HEADS, f"model.q_head must be one of {', '.join(Q_HEADS)}, got {self.q_head!r}"),
                (self.arch in ("encdec", "decoder"), f"model.arch must be 'encdec' or 'decoder', got {self.arch!r}"),
            ],
            ("d_model", "n_heads", "n_layers", "mlp_ratio"),
        ) or problems_of(
            "model",
            self,
            [
                (
                    self.d_model % self.n_heads == 0,
                    f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})",
                )
            ],
        )


@dataclass
class HFConfig:
    """The `hf` section: settings of a Hugging Face model (init.from_hf), which tokenq's own network has not."""

    # LoRA (Hu et al. 2021): rank R of the adapters; 0 = full fine-tuning. With R > 0 only the adapters and the Q/V
    # heads train, the target network copies only them, and actors receive only them.
    lora_rank: int = 0
    lora_alpha: float = 16.0  # the adapters' scale is lora_alpha / lora_rank
    # Comma-separated module names that get adapters, or "all-linear": every linear layer of the body (the attention
    # and MLP projections), never the LM head.
    lora_targets: str = "all-linear"
    token_bias: bool = False  # add a learned per-token bias b_a (starting at 0) to Q(s, a)
    # Learning rate of the heads the model gains (V, Q, token bias); 0 = learner.lr. New heads start at 0 and must
    # travel further than adapters in as many updates.
    head_lr: float = 0.0
    token_bias_lr: float = 0.0  # learning rate of hf.token_bias; 0 = head_lr (or learner.lr)
    # Adam's epsilon for hf.token_bias; 0 = the optimizer's own (1e-8). A token's bias gets a gradient only where
    # that token was taken, so with a tiny epsilon Adam's per-parameter scaling turns one occurrence into a step of
    # 12 to 31 x token_bias_lr whatever the size or the noise of its TD error. An epsilon well above the gradients'
    # size makes the step token_bias_lr / eps times the gradient (with momentum): consistent errors add up, noisy
    # ones cancel (a large epsilon steadies DQN's Adam likewise: Hessel et al. 2018).
    token_bias_eps: float = 0.0
    grad_checkpointing: bool = False  # recompute the model's activations in backward to save memory
    # Train only the top N transformer blocks (and the final norm) plus the heads, on a frozen trunk that runs once
    # per batch and serves the online Q, the target Q and the reference model (the original top blocks) alike;
    # 0 = the heads alone; -1 = off (LoRA with hf.lora_rank, or full fine-tuning).
    train_layers: int = -1
    chat_template: str = "auto"  # "auto": prompts go through the tokenizer's chat template when it has one; "none"

    def problems(self) -> list[str]:
        """This section's invalid values, each one sentence."""
        return problems_of(
            "hf",
            self,
            [
                (self.lora_rank >= 0, f"hf.lora_rank must be >= 0 (0 = full fine-tuning), got {self.lora_rank}"),
                (self.train_layers >= -1, f"hf.train_layers must be >= 0 (-1 = off), got {self.train_layers}"),
                (
                    self.train_layers < 0 or self.lora_rank == 0,
                    "hf.train_layers and hf.lora_rank cannot both be set: the trained top is its own copy, so LoRA "
                    "on it is not needed",
                ),
                (self.lora_alpha > 0, f"hf.lora_alpha must be > 0, got {self.lora_alpha}"),
                (self.head_lr >= 0, f"hf.head_lr must be >= 0 (0 = learner.lr), got {self.head_lr}"),
                (self.token_bias_lr >= 0, f"hf.token_bias_lr must be >= 0, got {self.token_bias_lr}"),
                (self.token_bias_eps >= 0, f"hf.token_bias_eps must be >= 0, got {self.token_bias_eps}"),
                (
                    self.chat_template in ("auto", "none"),
                    f"hf.chat_template must be auto or none, got {self.chat_template!r}",
                ),
            ],
        )


NETWORK_HF_FIELDS = (
    "lora_rank",
    "lora_alpha",
    "lora_targets",
    "token_bias",
    "head_lr",
    "token_bias_lr",
    "token_bias_eps",
    "grad_checkpointing",
    "train_layers",
)  # the `hf` settings a network reads (QNetConfig)


@dataclass
class QNetConfig(ModelConfig):
    """A network's whole config: the `model` section, the sizes its task gives it, and, on a Hugging Face model,
    the `hf` settings the network reads. Built when a run starts (tokenq/build.py resolve_net_config), stored in
    every checkpoint."""

    vocab_size: int = 12  # Q-values per position: the task's vocabulary
    max_prompt_len: int = 16  # longest prompt (position embeddings): the task's
    max_gen_len: int = 16  # the most tokens one episode can generate (the article's max_length): the task's
    bos_id: int = 1  # the token that starts the decoder (arch=encdec): the task's tokenizer's
    sep_id: int = 3  # the token between prompt and generation (arch=decoder): the task's tokenizer's
    hf_path: str = ""  # the Hugging Face model directory (init.from_hf); "" = tokenq's own network
    token_bias: bool = False  # hf.token_bias
    lora_rank: int = 0  # hf.lora_rank
    lora_alpha: float = 16.0  # hf.lora_alpha
    lora_targets: str = "all-linear"  # hf.lora_targets
    head_lr: float = 0.0  # hf.head_lr
    token_bias_lr: float = 0.0  # hf.token_bias_lr
    token_bias_eps: float = 0.0  # hf.token_bias_eps
    grad_checkpointing: bool = False  # hf.grad_checkpointing
    train_layers: int = -1  # hf.train_layers
    # The token ids every prompt starts with (a chat template's system turn): computed once into a KV cache.
    prefix_ids: list[int] = field(default_factory=list)
    soft_beta: float = 0.0  # learner.beta, which q_head=soft scales its logit shift by


@dataclass
class LearnerConfig:
    batch_size: int = 32  # episodes per update
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float = 10.0  # global gradient-norm clip
    gamma: float = 0.99  # discount factor in [0, 1)
    n_step: int = 1  # n-step returns; n > 1 propagates faster; biased off-policy on hard, exact on soft
    huber_delta: float = 1.0  # Huber loss threshold on the TD error
    target_update_every: int = 25  # hard copy every K updates (when target_tau == 0)
    target_tau: float = 0.0  # Polyak factor per update; 0 means hard copies
    device: str = "auto"  # "auto" (cuda when present), "cpu" or "cuda"
    max_nonfinite: int = 3  # non-finite updates in a row (each skipped) before rolling back to the last good state
    max_rollbacks: int = 3  # rollbacks to the same good state (no checkpoint since) before the run stops as diverged
    metrics_every: int = 10  # updates between host syncs of the learner's metrics
    compile: bool = False  # torch.compile the online and target networks' forward (dynamic shapes: T varies)
    # "hard": Double DQN's max backup. "soft": the KL-regularised backup over a reference policy pi_ref,
    # V(s) = beta log sum_a pi_ref(a|s) exp(Q(s, a) / beta); tokenq's own networks have no reference model, so
    # pi_ref is uniform there (the entropy-regularised MDP). Small beta is close to hard; large beta stays near pi_ref.
    backup: str = "hard"
    beta: float = 0.1  # the soft backup's temperature (reward units per nat of KL)

    def problems(self) -> list[str]:
        """This section's invalid values, each one sentence."""
        return problems_of(
            "learner",
            self,
            [
                (0 <= self.gamma < 1, f"learner.gamma must be in [0, 1), got {self.gamma}"),
                (0 <= self.target_tau <= 1, f"learner.target_tau must be in [0, 1], got {self.target_tau}"),
                (self.lr > 0, f"learner.lr must be > 0, got {self.lr}"),
                (self.backup in ("hard", "soft"), f"learner.backup must be hard or soft, got {self.backup!r}"),
                (self.beta > 0, f"learner.beta must be > 0, got {self.beta}"),
                (
                    self.device in ("auto", "cpu", "cuda"),
                    f"learner.device must be auto, cpu or cuda, got {self.device!r}",
                ),
            ],
            ("batch_size", "n_step", "target_update_every", "max_nonfinite", "metrics_every"),
        )
