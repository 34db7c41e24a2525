"""tokenq against TRL's GRPOTrainer, one after the other on this machine: the same model, prompts, reward function,
LoRA rank (GRPO's; tokenq trains what its preset trains) and wall-clock budget of training, both measured by
tokenq's own evaluation (greedy decoding of the held-out prompts: success, mean words, perplexity under the frozen
model, distinct-2).

    pip install -e ".[hf,compare]"
    python scripts/vs_grpo.py --model smollm2 --task lipogram --minutes 10 --out vs_grpo/lipogram
    python scripts/vs_grpo.py --model smollm2 --task lowercase --minutes 10 --out vs_grpo/lowercase
    python scripts/vs_grpo.py --model smollm2 --task without_the --minutes 10 --out vs_grpo/without_the
    python scripts/vs_grpo.py --model smollm2 --task first_word --minutes 10 --out vs_grpo/first_word

Tasks:
- lipogram: tokenq's lipogram preset (its per-token reward); GRPO gets the sequence-level reward below
  (2 for a success, otherwise minus the share of words holding an "e", minus 1 under 6 words).
- lowercase, without_the, first_word: task custom with examples/NAME/reward.py's function and JSONL prompts, given
  unchanged to both.

It writes OUT/tokenq (a tokenq run directory), OUT/grpo (GRPO's log and its held-out generations) and
OUT/result.json, and prints the table. TRL is only needed here (the `compare` extra), never by tokenq itself.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# the sequence-level example tasks: examples/NAME/reward.py's function FN on examples/NAME/{train,eval}.jsonl
EXAMPLES = {"lowercase": "lowercase_sentence", "without_the": "without_the", "first_word": "first_word"}
# tokenq's own settings for an example beyond the preset's: first_word depends on the prompt, and a token bias (one
# number per token for every state) could only learn to avoid the words an answer should not open with everywhere
EXAMPLE_SETTINGS = {"first_word": ["hf.token_bias=false"]}


def example_overrides(name: str) -> list[str]:
    """tokenq's settings for an example task: its function and prompt files."""
    return [
        "task.name=custom",
        f"task.reward_fn=examples.{name}.reward:{EXAMPLES[name]}",
        "task.prompt_len=64",
        f"task.prompts_file={ROOT / 'examples' / name / 'train.jsonl'}",
        f"task.eval_prompts_file={ROOT / 'examples' / name / 'eval.jsonl'}",
        *EXAMPLE_SETTINGS.get(name, []),
    ]


TASKS = {"lipogram": [], **{name: example_overrides(name) for name in EXAMPLES}}
METRICS = ("success", "mean_words", "prior_perplexity", "distinct_2")


def lipogram_reward(prompts, completions, **kwargs) -> list[float]:
    """GRPO's lipogram reward: 2 for at least 6 words without an "e"; otherwise minus the share of words holding
    one, minus 1 under 6 words."""
    out = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        words = text.split()
        with_e = sum("e" in w.lower() for w in words) / max(1, len(words))
        short = len(words) < 6
        out.append(2.0 if not (with_e or short) else -with_e - (1.0 if short else 0.0))
    return out


def grpo_reward(task: str):
    if task == "lipogram":
        return lipogram_reward
    module = importlib.import_module(f"examples.{task}.reward")
    return getattr(module, EXAMPLES[task])


def tokenq_config(model: str, task: str, seconds: float, extra: list[str] = ()):
    """tokenq's config and overrides for a task: the lipogram preset, the task's settings, then `extra`."""
    from tokenq.config import load_config

    overrides = [f"init.from_hf={model}", f"train.max_seconds={seconds}", *TASKS[task]]
    if task in EXAMPLES:  # n-step targets as long as an episode, since a sequence-level score arrives at the last
        # token only: each target reaches the first token at once, exact off-policy with the soft backup's KL cost
        overrides.append(f"learner.n_step={load_config('lipogram', overrides).task.max_length}")
    overrides += extra
    cfg = load_config("lipogram", overrides)
    return cfg, overrides


# ----- evaluation: tokenq's task on any model's greedy generations -----
def held_out_generations(model, spec) -> tuple[np.ndarray, np.ndarray]:
    """(actions, lengths) of a transformers model's greedy decoding of the held-out prompts, as tokenq lays out
    episodes: at most task.max_length tokens, the EOS included where it came."""
    import torch

    from actors.text_task import PROMPT_PAD

    task, eos = spec.task, spec.task.tokenizer.eos_id
    rows = [row[row != PROMPT_PAD].tolist() for row in spec.heldout]
    actions = np.full((len(rows), task.max_steps), eos, dtype=np.int64)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for start in range(0, len(rows), 25):
        chunk = rows[start : start + 25]
        width = max(map(len, chunk))
        ids = torch.tensor([[eos] * (width - len(r)) + r for r in chunk])  # left padding
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in chunk])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=task.max_steps,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
            )[:, width:]
        for i, seq in enumerate(out.tolist()):
            n = seq.index(eos) + 1 if eos in seq else len(seq)
            actions[start + i, :n], lengths[start + i] = seq[:n], n
    return actions, lengths


def measure(spec, actions, lengths) -> dict:
    """tokenq's held-out metrics of these generations, as its own evaluation computes them."""
    success = spec.task.success(spec.heldout, actions, lengths)
    metrics = spec.task.text_metrics(spec.heldout, actions, lengths)
    tok = spec.task.tokenizer
    return {
        "success": float(success.mean()),
        "mean_words": metrics["mean_words"],
        "prior_perplexity": metrics["prior_perplexity"],
        "distinct_2": metrics["distinct_2"],
        "samples": [tok.decode(actions[i, : lengths[i]]) for i in range(4)],
    }


# ----- GRPO -----
def run_grpo(args) -> None:
    """GRPOTrainer with LoRA for args.minutes of training, then its greedy held-out generations (child process)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from actors.text import read_prompt_records
    from tokenq.build import build_spec

    torch.manual_seed(0)
    out = Path(args.out) / "grpo"
    out.mkdir(parents=True, exist_ok=True)
    cfg, _ = tokenq_config(args.model, args.task, args.minutes * 60, args.set)
    records = read_prompt_records(Path(cfg.task.prompts_file))
    rows = [
        {"prompt": r.prompt if isinstance(r.prompt, list) else [{"role": "user", "content": r.prompt}], **r.columns}
        for r in records
    ]
    budget, log = args.minutes * 60.0, []

    class Budget(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_log(self, _args, state, control, logs=None, **k):
            log.append({"step": state.global_step, "train_s": round(time.perf_counter() - self.t0, 1), **(logs or {})})

        def on_step_end(self, _args, state, control, **k):
            if time.perf_counter() - self.t0 >= budget:
                control.should_training_stop = True

    config = GRPOConfig(
        output_dir=str(out / "trainer"),
        learning_rate=args.grpo_lr,
        per_device_train_batch_size=16,
        num_generations=8,
        max_completion_length=cfg.task.max_length,
        temperature=1.0,
        top_k=cfg.actors.top_k,
        beta=args.grpo_beta,
        max_steps=100000,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    lora = LoraConfig(
        r=args.lora_rank, lora_alpha=2 * args.lora_rank, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=grpo_reward(args.task),
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[Budget()],
    )
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    policy = trainer.model.merge_and_unload().eval()
    spec = build_spec(cfg)
    actions, lengths = held_out_generations(policy, spec)
    steps = max((e["step"] for e in log), default=0)
    np.savez(out / "generations.npz", actions=actions, lengths=lengths)
    (out / "log.json").write_text(json.dumps({"train_s": train_s, "steps": steps, "log": log}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True, help="a Hugging Face model directory (tokenq hf-import's output)")
    p.add_argument("--task", choices=sorted(TASKS), default="lipogram")
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget of each system")
    p.add_argument("--lora-rank", type=int, default=8, help="GRPO's LoRA rank")
    p.add_argument("--grpo-lr", type=float, default=1e-4)
    p.add_argument("--grpo-beta", type=float, default=0.04, help="GRPO's KL coefficient")
    p.add_argument("--out", default="vs_grpo")
    p.add_argument("--only", choices=("grpo", "tokenq"), help="run one side (the other's results are kept)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="tokenq settings beyond the task's")
    p.add_argument("--grpo-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    try:
        import trl  # noqa: F401
    except ImportError:
        sys.exit('scripts/vs_grpo.py needs TRL: pip install -e ".[hf,compare]"')
    if args.grpo_child:
        return run_grpo(args)

    from transformers import AutoModelForCausalLM

    from tokenq.build import build_spec

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg, overrides = tokenq_config(args.model, args.task, args.minutes * 60, args.set)
    if args.only != "tokenq":  # GRPO in its own process, so that its memory and threads are gone before tokenq
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--grpo-child"], check=True)
    if args.only != "grpo":
        cmd = ["tokenq", "train", "--config", "lipogram", *overrides, "--run-dir", str(out / "tokenq")]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)

    spec = build_spec(cfg)
    reference = AutoModelForCausalLM.from_pretrained(args.model).eval()
    baseline = measure(spec, *held_out_generations(reference, spec))
    grpo_log = json.loads((out / "grpo" / "log.json").read_text())
    gen = np.load(out / "grpo" / "generations.npz")
    grpo = measure(spec, gen["actions"], gen["lengths"]) | {
        "train_s": grpo_log["train_s"],
        "steps": grpo_log["steps"],
        "completions": grpo_log["steps"] * 16,
    }
    rows = [
        ("warm start", baseline, ""),
        (f"GRPO (LoRA r{args.lora_rank})", grpo, f"{grpo['steps']} steps, {grpo['completions']} completions"),
    ]
    result = {"task": args.task, "minutes": args.minutes, "baseline": baseline, "grpo": grpo}
    summary_file = out / "tokenq" / "summary.json"
    if summary_file.exists():
        result["tokenq"] = tokenq_result(json.loads(summary_file.read_text()))
        tq = result["tokenq"]
        rows.append(("tokenq", tq, f"{tq['updates']} updates, {tq['env_steps']} env steps"))
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(f"\n{args.task}, {args.minutes:g} minutes of training each, {len(spec.heldout)} held-out prompts (greedy)")
    print(f"{'':24}{'success':>9}{'words':>8}{'ppl':>8}{'distinct-2':>12}  work")
    for name, row, work in rows:
        print(
            f"{name:24}{row['success']:9.3f}{row['mean_words']:8.1f}{row['prior_perplexity']:8.2f}"
            f"{row['distinct_2']:12.2f}  {work}"
        )
    for name, row, _ in rows:
        print(f"{name} samples:", *row["samples"][:3], sep="\n  ")


def tokenq_result(summary: dict) -> dict:
    """tokenq's final held-out evaluation from its summary.json (the same task.success and text_metrics)."""
    ev = summary["eval"]
    return {
        "success": ev["success_rate"],
        "mean_words": ev["mean_words"],
        "prior_perplexity": ev["prior_perplexity"],
        "distinct_2": ev["distinct_2"],
        "samples": [s["generation"] for s in ev["samples"]],
        "train_s": summary.get("train_time_s"),
        "updates": summary["learner_updates"],
        "env_steps": summary["env_steps"],
        "curve": summary.get("eval_history"),
    }


if __name__ == "__main__":
    main()
