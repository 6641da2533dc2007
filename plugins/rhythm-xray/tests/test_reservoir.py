"""The sample a histogram series keeps between two EMF flushes: everything up to its size,
then each observation kept with the same chance, however the observations were batched."""

from __future__ import annotations

import random

from rhythm_xray.emf import Reservoir


def _chunks(rng: random.Random, values: list[float]) -> list[tuple[float, ...]]:
    out, at = [], 0
    while at < len(values):
        size = rng.choice([1, 3, 17, 40])
        out.append(tuple(values[at:at + size]))
        at += size
    return out


def test_keeps_everything_until_full() -> None:
    sample = Reservoir(50)
    sample.extend(tuple(float(n) for n in range(30)))
    sample.extend((30.0, 31.0))
    assert sample.values == [float(n) for n in range(32)] and sample.seen == 32


def test_each_observation_is_kept_with_the_same_chance() -> None:
    """20,000 streams of 100 observations in uneven chunks, a sample of 10: each observation
    should be kept about 2,000 times (binomial, sd 42); a sampler favouring the first, the
    last or the chunks' edges would be off by hundreds."""
    random.seed(20261127)  # the sampler draws from the module's generator
    rng = random.Random(7)
    kept = [0] * 100
    stream = [float(n) for n in range(100)]
    for _ in range(20_000):
        sample = Reservoir(10)
        for chunk in _chunks(rng, stream):
            sample.extend(chunk)
        assert sample.seen == 100 and len(sample.values) == 10
        assert len(set(sample.values)) == 10  # no observation kept twice
        for value in sample.values:
            kept[int(value)] += 1
    assert min(kept) > 1800 and max(kept) < 2200, (min(kept), max(kept))
    first_half, second_half = sum(kept[:50]), sum(kept[50:])
    assert abs(first_half - second_half) < 1500, (first_half, second_half)
