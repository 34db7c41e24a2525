from pathlib import Path

import actors
import distributed
import learner
import replay
import tokenq

REPO = Path(__file__).resolve().parents[1]


def test_top_level_packages_resolve_to_this_repository():
    # dask ships a top-level `distributed` too; ours must win.
    for module in (tokenq, actors, replay, learner, distributed):
        assert Path(module.__file__).resolve().parent.parent == REPO
    from tokenq import cli

    assert callable(cli.main) and cli.check_distributed_is_ours() is None
