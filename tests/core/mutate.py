"""Seeded byte mutations for the tests that feed damaged input (frames, recordings) to a reader."""

from __future__ import annotations

import random


def mutate_bytes(data: bytes, rng: random.Random, cut: int, grow: int) -> bytes:
    """1 to 4 edits at random places: a byte changed, up to ``cut`` bytes cut out, or up to ``grow``
    random bytes inserted."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(out) + 1)
        how = rng.randrange(3)
        if how == 0 and pos < len(out):
            out[pos] = rng.randrange(256)
        elif how == 1:
            del out[pos:pos + rng.randint(1, cut)]
        else:
            out[pos:pos] = rng.randbytes(rng.randint(1, grow))
    return bytes(out)
