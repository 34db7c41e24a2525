"""What exists because of Ray: the hosts of rollout, replay, learner and weight store (hosts.py), placing a run's
actors (launch.py), the Ape-X driver with supervision (driver.py), the weight store (weights.py) and the weights
codec (codec.py).

It imports nothing from tokenq/: hosts receive factories and plain arguments, the driver a config, a spec and a
recorder. Only hosts.py, launch.py and driver.py import ray.
"""
