"""The studies of a peak hour, as a schedule.

The mix is the peak hour MONAI Deploy's Informatics Gateway is specified for: 120 CR, 50 US,
30 CT and 25 MR studies an hour. Instances per study follow what such studies hold (a CR one or
two radiographs; an US exam a few dozen frames; a CT a few hundred slices; an MR a few
series of a hundred or so). Arrivals are a Poisson process per modality at `multiplier` times
the hourly rate, so studies overlap as they do in a department.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PEAK_HOUR = {"CR": 120, "US": 50, "CT": 30, "MR": 25}          # studies per hour at 1×
INSTANCES = {"CR": (1, 2), "US": (20, 60), "CT": (150, 400), "MR": (100, 300)}


@dataclass(frozen=True)
class PlannedStudy:
    index: int
    due: float            # seconds after the start
    modality: str
    instances: int


def schedule(multiplier: float, duration: float, seed: int = 1) -> list[PlannedStudy]:
    """The studies due in the first `duration` seconds, in order of arrival."""
    rng = random.Random(seed)
    arrivals: list[tuple[float, str]] = []
    for modality, per_hour in PEAK_HOUR.items():
        rate = per_hour * multiplier / 3600.0
        t = rng.expovariate(rate)
        while t < duration:
            arrivals.append((t, modality))
            t += rng.expovariate(rate)
    arrivals.sort()
    return [PlannedStudy(i, t, m, rng.randint(*INSTANCES[m])) for i, (t, m) in enumerate(arrivals)]


def describe(plan: list[PlannedStudy]) -> str:
    by = {m: [p for p in plan if p.modality == m] for m in PEAK_HOUR}
    return ", ".join(f"{len(v)} {m} ({sum(p.instances for p in v)} inst)" for m, v in by.items())
