"""What exists because of Ray: the hosts of rollout, replay, rate limiter, weight store and evaluation (hosts.py),
the free-running learner's host (learner_host.py) and its sampler over the shards (sampler.py), placing a run's
actors (launch.py), the Ape-X driver with supervision (driver.py) and what it counts (progress.py), the weight store
(weights.py) and the weights codec (codec.py).

It imports nothing from tokenq/: hosts receive factories and plain arguments, the driver a config, a spec and a
recorder. factories.py, weights.py, codec.py and progress.py do not import ray.
"""
