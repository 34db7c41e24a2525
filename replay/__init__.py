"""Prioritized replay of whole episodes: the batch format, sum tree, shards, snapshots and the loss ledger.

Imports neither torch nor ray.
"""
