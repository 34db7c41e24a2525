"""Durable replay: a shard that snapshots itself and a ledger that counts what a crash lost.

Pure: imports neither torch nor ray.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from replay.episodes import EpisodeBatch
from replay.format import pack_arrays, write_sealed
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
        self.lock = threading.Lock()  # the snapshot writer's thread writes too
        self.values = dict.fromkeys(LEDGER_FIELDS, 0)
        raw = os.pread(self.fd, 8 * len(LEDGER_FIELDS), 0)
        if len(raw) == 8 * len(LEDGER_FIELDS):
            self.values = dict(zip(LEDGER_FIELDS, (int(x) for x in np.frombuffer(raw, dtype=np.int64))))

    def write(self, **changes: int) -> None:
        with self.lock:
            self.values.update(changes)
            os.pwrite(self.fd, np.array([self.values[k] for k in LEDGER_FIELDS], dtype=np.int64).tobytes(), 0)


class DurableShard:
    """A ReplayShard that snapshots itself to `directory` every `every_s` seconds (checked on insert) and, when
    built over an existing directory, restores the newest snapshot and counts what was lost since it.

    A snapshot does not hold up inserts: it takes the shard's arrays by reference (the shard copies them on its next
    change, copy-on-write) and a background thread packs and writes them. The ledger's snapshot time is the moment
    the arrays were taken, written once the file is on disk."""

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
        self.writer: threading.Thread | None = None
        self.write_error: BaseException | None = None

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
            self.snapshot(wait=False)
        return added

    def snapshot(self, wait: bool = True) -> int:
        """Take the shard's state now and write it in the background (`wait`: until it is on disk); returns the
        transitions it covers. While an earlier write is still running, a background snapshot is skipped."""
        if self.writer is not None and self.writer.is_alive():
            if not wait:
                return self.shard.inserted_transitions
            self.writer.join()
        arrays, meta = self.shard.freeze()
        taken_ns, covered = time.time_ns(), self.shard.inserted_transitions
        self.last_snapshot = time.monotonic()
        self.writer = threading.Thread(target=self._write, args=(arrays, meta, taken_ns), daemon=True)
        self.writer.start()
        if wait:
            self.writer.join()
            if self.write_error is not None:
                raise self.write_error
        return covered

    def _write(self, arrays: dict, meta: dict, taken_ns: int) -> None:
        try:
            write_sealed(self.path, pack_arrays(arrays, meta))
        except OSError as err:  # reported by the next waiting snapshot; the shard keeps serving
            self.write_error = err
            return
        self.ledger.write(snapshot_ns=taken_ns)
        self.snapshots += 1
