"""The tests import the installed project (`pip install -e .`), and run the installed `tokenq` command in
subprocesses (tests/procs.py): no repository path is injected, so a packaging mistake fails a test."""

import pytest
import torch

torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    # Tests that end every Ray process on the machine run after all others.
    items.sort(key=lambda item: "kills_ray" in item.keywords)
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the whole test session."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
