"""Running tokenq: config, replay, weight store, the serial and Ray drivers, metrics, CLI.

Only `distributed.ray_*` modules import ray; the rest are plain Python shared by both modes.
"""
