"""The built-in grammar corpus: data for the text tasks (a generator of English-like sentences and its word
lists), kept apart from the rollout code."""
