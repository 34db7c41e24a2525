"""tokenq's benchmarks, each a module that prints figures (no assertions):

- core.py: `tokenq bench`, throughput of rollout, learner, replay, publish and short runs against this machine's
  matmul ceiling;
- scale.py: `tokenq bench --scale`, the Ape-X control plane at 1, 8 and 32 actors;
- hf.py: the Hugging Face figures of `tokenq bench` and the GPU script's HF shapes;
- gpu.py: learner updates/s and MFU on a GPU (`python scripts/gpu_bench.py`);
- learner_speed.py: a preset's learner updates/s with or without torch.compile (`python -m tokenq.bench.learner_speed`);
- hf_memory.py: peak memory of a learner on an HF model, full fine-tuning against LoRA
  (`python -m tokenq.bench.hf_memory MODEL_DIR`);
- common.py: what they share (FLOP counts, timing, rollout loops, synthetic batches, the table).

This file imports nothing: the GPU script loads the package on a machine with only torch and numpy.
"""
