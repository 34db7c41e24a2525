"""Durable replay: a shard that snapshots itself and a ledger that counts what a crash lost.

Pure: imports neither torch nor ray.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from replay.episodes import EpisodeBatch
from replay.shard import ReplayShard

LEDGER_FIELDS = ("inserted", "lost", "starts", "snapshot_ns", "insert_ns", "lost_window_ns")


class Ledger:
    """Int64 counters in a small file beside a shard's snapshot, rewritten with one pwrite on every insert (no
    fsync: it must outlive the process, not the machine): transitions inserted so far, transitions lost to
    restarts, shard processes started over this directory, the wall-clock time (ns) of the last snapshot and of the
    last insert, and the longest stretch of inserts a restart has lost.

    When a shard comes back from its snapshot, inserted-per-ledger minus inserted-per-snapshot is exactly what the
    dead process held that the snapshot did not, and last insert minus last snapshot is how long it took to insert
    them: under one snapshot interval, since the first insert past an interval takes a new snapshot."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self.values = dict.fromkeys(LEDGER_FIELDS, 0)
        raw = os.pread(self.fd, 8 * len(LEDGER_FIELDS), 0)
        if len(raw) == 8 * len(LEDGER_FIELDS):
            self.values = dict(zip(LEDGER_FIELDS, (int(x) for x in np.frombuffer(raw, dtype=np.int64))))

    def write(self, **changes: int) -> None:
        self.values.update(changes)
        os.pwrite(self.fd, np.array([self.values[k] for k in LEDGER_FIELDS], dtype=np.int64).tobytes(), 0)


class DurableShard:
    """A ReplayShard that snapshots itself to `directory` every `every_s` seconds (checked on insert) and, when
    built over an existing directory, restores the newest snapshot and counts what was lost since it."""

    def __init__(self, shard: ReplayShard, directory: Path, name: str, every_s: float):
        self.shard, self.every_s = shard, every_s
        self.path = Path(directory) / f"{name}.snap"
        self.ledger = Ledger(Path(directory) / f"{name}.ledger")
        self.restored = self.path.exists()
        if self.restored:
            shard.load_snapshot(self.path)
        before = self.ledger.values
        lost_now = max(0, before["inserted"] - shard.inserted_transitions)
        window_ns = before["insert_ns"] - before["snapshot_ns"] if lost_now else 0
        # What this process starts from is on disk already (the snapshot, or nothing at all): its own "snapshot".
        self.ledger.write(
            inserted=shard.inserted_transitions,
            lost=before["lost"] + lost_now,
            starts=before["starts"] + 1,
            snapshot_ns=time.time_ns(),
            lost_window_ns=max(before["lost_window_ns"], window_ns),
        )
        self.last_snapshot = time.monotonic()
        self.snapshots = 0

    @property
    def lost(self) -> int:
        return self.ledger.values["lost"]

    @property
    def starts(self) -> int:
        return self.ledger.values["starts"]

    @property
    def lost_window_s(self) -> float:
        """The longest time over which transitions lost to one restart had been inserted."""
        return self.ledger.values["lost_window_ns"] / 1e9

    def add(self, batch: EpisodeBatch) -> int:
        # Counted before the insert: a process killed in between overstates the loss, never understates it.
        self.ledger.write(inserted=self.shard.inserted_transitions + batch.num_transitions, insert_ns=time.time_ns())
        added = self.shard.add(batch)
        if self.every_s > 0 and time.monotonic() - self.last_snapshot >= self.every_s:
            self.snapshot()
        return added

    def snapshot(self) -> int:
        """Write the snapshot now; returns the transitions it covers."""
        self.shard.save_snapshot(self.path)
        self.ledger.write(snapshot_ns=time.time_ns())
        self.last_snapshot = time.monotonic()
        self.snapshots += 1
        return self.shard.inserted_transitions
