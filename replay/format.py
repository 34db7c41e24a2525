"""Safe formats for what crosses a process or file boundary: msgpack with strict types, never pickle.

Pure: imports neither torch nor ray.
- `pack_arrays` / `unpack_arrays`: a dict of numpy arrays (plus plain metadata) as msgpack bytes. Episode batches
  (actor -> shard), sampled batches (shard -> learner) and published weights (learner -> actors, through
  distributed/codec.py) travel this way, and unpacking checks every dtype, shape and byte count against what the
  receiver expects.
- `write_sealed` / `read_sealed`: the same bytes in a file behind a magic line and a SHA-256 checksum, written
  atomically (temporary file, fsync, rename). Replay snapshots use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import msgpack
import numpy as np

from replay.episodes import EPISODE_SCHEMA, SAMPLE_EXTRAS, SAMPLE_SCHEMA, EpisodeBatch, SampledBatch

MAGIC = b"tokenq-sealed-v1\n"
DTYPES = {"bool", "uint8", "int32", "int64", "float32", "float64"}


class CodecError(ValueError):
    pass


def pack_arrays(arrays: dict[str, np.ndarray], meta: dict | None = None) -> bytes:
    body = {}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.name not in DTYPES:
            raise CodecError(f"array {name!r} has dtype {a.dtype.name}, not one of {sorted(DTYPES)}")
        body[name] = [a.dtype.name, list(a.shape), a.tobytes()]
    return msgpack.packb({"meta": meta or {}, "arrays": body}, use_bin_type=True)


def unpack_arrays(data: bytes, what: str, expect: dict[str, tuple[str, int]] | None = None) -> tuple[dict, dict]:
    """(arrays, meta) from `pack_arrays` bytes. `expect` maps required array names to (dtype kind, ndim), kind one
    of "i" (integer), "f" (float), "b" (bool); anything malformed is a CodecError naming `what`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"{what} is {type(data).__name__}, not packed bytes")
    try:
        # No ext types, string map keys only: the unpacker can build nothing but plain values.
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext)
    except (ValueError, msgpack.UnpackException, CodecError) as err:
        raise CodecError(f"{what} is not valid packed data ({err})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("arrays"), dict) or not isinstance(obj.get("meta"), dict):
        raise CodecError(f"{what} does not hold packed arrays")
    arrays = {}
    for name, entry in obj["arrays"].items():
        if not (isinstance(entry, list) and len(entry) == 3 and entry[0] in DTYPES and isinstance(entry[2], bytes)):
            raise CodecError(f"{what}: array {name!r} is malformed")
        dtype, shape, raw = np.dtype(entry[0]), entry[1], entry[2]
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise CodecError(f"{what}: array {name!r} has a malformed shape {shape!r}")
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise CodecError(f"{what}: array {name!r} holds {len(raw)} bytes, its shape {shape} needs another count")
        arrays[name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
    for name, (kind, ndim) in (expect or {}).items():
        a = arrays.get(name)
        if a is None:
            raise CodecError(f"{what} lacks the array {name!r}")
        if a.dtype.kind not in (kind, "u" if kind == "i" else kind) or a.ndim != ndim:
            raise CodecError(f"{what}: array {name!r} must be {ndim}-d of kind {kind!r}, got {a.dtype} {a.shape}")
    return arrays, obj["meta"]


def _no_ext(code: int, data: bytes):
    raise CodecError(f"extension type {code} is not allowed")


def rng_state(rng: np.random.Generator) -> str:
    """A numpy generator's state as JSON text (PCG64's 128-bit integers do not fit msgpack's integers)."""
    return json.dumps(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, text: str, what: str) -> None:
    try:
        rng.bit_generator.state = json.loads(text)
    except (TypeError, ValueError, KeyError):
        raise CodecError(f"{what} holds a malformed random state") from None


def write_sealed(path: Path, payload: bytes) -> None:
    """MAGIC, the payload's SHA-256, the payload; atomic so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_sealed(path: Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CodecError(f"cannot read {what} {path}: {err.strerror}") from None
    head = len(MAGIC) + 32
    if not data.startswith(MAGIC) or len(data) < head:
        raise CodecError(f"{what} {path} is not a tokenq snapshot file (bad header or truncated)")
    payload = data[head:]
    if hashlib.sha256(payload).digest() != data[len(MAGIC) : head]:
        raise CodecError(f"{what} {path} is corrupted or truncated (checksum mismatch)")
    return payload


def decode_episodes(data: bytes) -> EpisodeBatch:
    """An actor's packed episodes, checked for types and consistent shapes."""
    arrays, _ = unpack_arrays(data, "an episode batch", EPISODE_SCHEMA)
    n = len(arrays["lengths"])
    T = arrays["actions"].shape[1]
    same_rows = all(len(arrays[k]) == n for k in ("prompts", "actions", "rewards"))
    if not same_rows or arrays["rewards"].shape[1] != T or (n and (arrays["lengths"].max() > T)):
        raise CodecError("an episode batch has arrays of inconsistent shapes")
    for name in ("priorities", "versions"):
        if name in arrays and arrays[name].shape != (n,):
            raise CodecError(f"an episode batch has {name} of shape {arrays[name].shape}, not ({n},)")
    return EpisodeBatch(
        arrays["prompts"],
        arrays["actions"],
        arrays["rewards"],
        arrays["lengths"],
        priorities=arrays.get("priorities"),
        versions=arrays.get("versions"),
    )


def decode_sample(data: bytes) -> SampledBatch:
    arrays, _ = unpack_arrays(data, "a sampled batch", SAMPLE_SCHEMA)
    return SampledBatch(**{k: arrays[k] for k in SAMPLE_SCHEMA}, **{k: arrays.get(k) for k in SAMPLE_EXTRAS})
