"""Rollout side of tokenq: tokenizers, text tasks and rewards, epsilon-greedy policy, KV-cached rollout."""
