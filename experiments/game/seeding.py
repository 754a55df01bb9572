"""Many keyed random streams at once: SeedSequence's seeding, vectorised over the last key word.

The game gives every trader its own stream, keyed by the trader's creation number (uid), so
that a trader's draws do not depend on who else exists (common random numbers across
policies).  Seeding one :class:`numpy.random.SeedSequence` per entrant is slow at scale;
:func:`child_seed_states` computes the seed words of many such children in one array pass
with the same mixing hash (NumPy's documented algorithm, after O'Neill's ``seed_seq_fe``), and
:class:`FixedSeed` hands one row to ``PCG64``.  The draws are exactly those of
``default_rng(SeedSequence(entropy, spawn_key=(..., uid)))``; tests compare them key by key.
"""

from __future__ import annotations

import numpy as np
from numpy.random.bit_generator import ISeedSequence

__all__ = ["FixedSeed", "child_seed_states"]

# SeedSequence's hashing constants (numpy's documented algorithm, O'Neill's seed_seq_fe)
_M32 = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_XSHIFT = np.uint32(16)


def _uint32_words(value: int | tuple) -> list[int]:
    """An int (or a tuple of them) as SeedSequence sees it: little-endian 32-bit words."""
    if isinstance(value, tuple | list):
        return [w for v in value for w in _uint32_words(v)]
    x = int(value)
    out = [x & _M32]
    x >>= 32
    while x:
        out.append(x & _M32)
        x >>= 32
    return out


def child_seed_states(ss: np.random.SeedSequence, prefix: tuple, last: np.ndarray) -> np.ndarray:
    """``SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, *prefix, u)).generate_state(4,
    uint64)`` for every ``u`` in ``last`` (ints < 2**32), as one (n, 4) uint64 array.

    The per-key seeding of many child streams at once: the same mixing hash over uint32
    words as :class:`numpy.random.SeedSequence`, vectorised over the last spawn-key word
    (tests compare it with numpy's own, key by key).  Row ``i`` seeds ``PCG64`` exactly as
    that SeedSequence would (see :class:`FixedSeed`).
    """
    last = np.asarray(last, dtype=np.int64)
    if last.size and (int(last.min()) < 0 or int(last.max()) > _M32):
        raise ValueError("last spawn-key words must be in [0, 2**32)")
    pool_size = int(ss.pool_size)
    run = _uint32_words(ss.entropy)
    if len(run) < pool_size:  # SeedSequence pads the run entropy when a spawn key follows
        run += [0] * (pool_size - len(run))
    words = [*run, *_uint32_words((*ss.spawn_key, *prefix))]  # the same for every key
    # every word but the last (which comes after the pool's first fill, as the run entropy
    # fills it) is mixed once, in Python integers
    consts = _hash_constants(_INIT_A, _MULT_A, pool_size * (len(words) + 1) + 1)
    pool = [_hashmix(words[i], consts[i], consts[i + 1]) for i in range(pool_size)]
    at = pool_size
    for i_src in range(pool_size):
        for i_dst in range(pool_size):
            if i_src != i_dst:
                pool[i_dst] = _mix(pool[i_dst], _hashmix(pool[i_src], consts[at], consts[at + 1]))
                at += 1
    for w in words[pool_size:]:
        for i_dst in range(pool_size):
            pool[i_dst] = _mix(pool[i_dst], _hashmix(w, consts[at], consts[at + 1]))
            at += 1
    # the last word, vectorised over the keys: (n, pool_size), one hash constant per column
    v = _hashmix_array(last.astype(np.uint32)[:, None], consts[at : at + pool_size + 1])
    r = np.uint32(_MIX_L) * np.array(pool, dtype=np.uint32) - np.uint32(_MIX_R) * v
    r ^= r >> _XSHIFT
    # the output words: pool word i % pool_size, hashed with the second constants
    out = _hashmix_array(r[:, np.arange(8) % pool_size], _hash_constants(_INIT_B, _MULT_B, 9))
    return out.astype("<u4", order="C").view("<u8").astype(np.uint64)


def _hash_constants(init: int, mult: int, n: int) -> list[int]:
    """The first ``n`` values of SeedSequence's hash constant: ``init``, then times ``mult``."""
    out = [init]
    for _ in range(n - 1):
        out.append((out[-1] * mult) & _M32)
    return out


def _hashmix(value: int, xor: int, times: int) -> int:
    """SeedSequence's ``hashmix`` of one uint32 word, with the constant before and after it
    advanced (``xor`` and ``times``)."""
    v = ((value ^ xor) * times) & _M32
    return v ^ (v >> 16)


def _mix(x: int, y: int) -> int:
    """SeedSequence's ``mix`` of two uint32 words."""
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> 16)


def _hashmix_array(v: np.ndarray, consts: list[int]) -> np.ndarray:
    """:func:`_hashmix` of uint32 ``v`` (..., m) with constants ``consts[j]``, ``consts[j + 1]``
    for column ``j`` (a broadcast over the keys)."""
    c = np.array(consts, dtype=np.uint32)
    h = (v ^ c[:-1]) * c[1:]
    h ^= h >> _XSHIFT
    return h


class FixedSeed(ISeedSequence):
    """A seed sequence whose state is already known (a row of :func:`child_seed_states`).

    ``np.random.PCG64(FixedSeed(row))`` is the bit generator ``PCG64(SeedSequence(...))``
    builds, without hashing the key again.
    """

    __slots__ = ("_state",)

    def __init__(self, state: np.ndarray) -> None:
        self._state = state

    def generate_state(self, n_words: int, dtype: type = np.uint32) -> np.ndarray:
        """The stored four uint64 words (the only request ``PCG64`` makes)."""
        if n_words != 4 or np.dtype(dtype) != np.uint64:
            raise ValueError("FixedSeed holds PCG64's four uint64 seed words only")
        return self._state
