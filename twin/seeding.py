"""Deterministic random streams keyed by the scenario seed and a stable entity id.

Keys are hashed with BLAKE2b, never Python's ``hash`` (salted per process), so a stream
depends only on (seed, key parts) and not on creation order: adding a counterfactual
sensor does not change any other entity's randomness.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_key(*parts: object) -> int:
    """A 64-bit integer from the text of ``parts``; the same in every process and run."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def rng_for(seed: int, *key_parts: object) -> np.random.Generator:
    """A Generator for the entity named by ``key_parts`` under scenario ``seed``."""
    seq = np.random.SeedSequence(entropy=int(seed), spawn_key=(stable_key(*key_parts),))
    return np.random.Generator(np.random.PCG64(seq))
