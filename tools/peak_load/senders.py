"""Senders: dcmtk `storescu` processes working through a schedule of studies, as modalities do.

Each sender has its own calling AE title (MODALITY1, MODALITY2, …) and sends one study per
association. What the platform refuses for lack of room (0xA700), what got no response (the
platform was killed, the association was cut) and associations that could not be made are sent
again after `retry_delay`, like a modality's send queue; other refusals are final. A study's
files live in `work_dir` (tmpfs when given) from its first attempt until all are acknowledged.
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from claractl.platform.dicom.synthetic_studies import StudyFactory

from .mix import PlannedStudy

STORESCU = "/usr/bin/storescu"      # dcmtk's; pynetdicom installs its own `storescu` earlier on PATH
PEER_ENV = {**os.environ, "TCP_NODELAY": "1"}
_SENDING = re.compile(r"^I: Sending file: (.*)$")
_RESPONSE = re.compile(r"^I: Received Store Response \((.*)\)$")


def storescu_responses(output: str) -> dict[str, str]:
    """file path → the response text storescu -v printed for it ("Success", "Refused: …")."""
    out: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        if m := _SENDING.match(line):
            current = m[1]
        elif (m := _RESPONSE.match(line)) and current is not None:
            out[current] = m[1]
            current = None
    return out


def is_acknowledged(response: str) -> bool:
    return response == "Success" or response.startswith("Warning")


def is_retryable(response: str) -> bool:
    return response.startswith("Refused: OutOfResources") or response.startswith("Refused: Out of Resources")


@dataclass
class SentStudy:
    plan: PlannedStudy
    study_uid: str
    sender: str = ""
    uids: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)     # uid → final refusal
    resent: set[str] = field(default_factory=set)             # sent again after no response
    attempts: int = 0
    started: float | None = None      # time.time() of the first attempt
    done: float | None = None         # … when the last instance was acknowledged
    problems: list[str] = field(default_factory=list)         # why attempts failed

    @property
    def finished(self) -> bool:
        return len(self.acknowledged) + len(self.refused) == len(self.uids)


class SenderPool:
    def __init__(self, factory: StudyFactory, port: int, called_ae: str, senders: int, work_dir: Path,
                 *, host: str = "127.0.0.1", retry_delay: float = 2.0, extra_args: tuple[str, ...] = ()) -> None:
        self.factory = factory
        self.host, self.port, self.called_ae = host, port, called_ae
        self.aets = [f"MODALITY{i + 1}" for i in range(senders)]
        self.work_dir = work_dir
        self.retry_delay = retry_delay
        self.extra_args = extra_args
        self.studies: list[SentStudy] = []
        self._queue: list[tuple[float, int, SentStudy]] = []    # (due monotonic, seq, study)
        self._seq = 0
        self._cond = threading.Condition()
        self._closing = False

    # ------------------------------------------------------------------ schedule
    def run(self, plan: list[PlannedStudy], until: float) -> list[SentStudy]:
        """Send `plan` (due times relative to now); keep retrying until everything is acknowledged
        or `until` (monotonic) passes. Returns every study."""
        t0 = time.monotonic()
        with self._cond:
            for p in plan:
                study = SentStudy(p, self.factory.new_uid())
                self.studies.append(study)
                self._push(t0 + p.due, study)
        threads = [threading.Thread(target=self._work, args=(aet, until), name=f"sender-{aet}", daemon=True)
                   for aet in self.aets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.studies

    def _push(self, due: float, study: SentStudy) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (due, self._seq, study))
        self._cond.notify()

    def _next(self, until: float) -> SentStudy | None:
        with self._cond:
            while True:
                if not self._queue:
                    if all(s.finished for s in self.studies) or time.monotonic() > until:
                        self._cond.notify_all()
                        return None
                    self._cond.wait(0.5)
                    continue
                due, _, study = self._queue[0]
                now = time.monotonic()
                if now > until:
                    return None
                if due <= now:
                    heapq.heappop(self._queue)
                    return study
                self._cond.wait(min(due - now, 0.5))

    def _work(self, aet: str, until: float) -> None:
        while (study := self._next(until)) is not None:
            self._attempt(study, aet)
            with self._cond:
                if study.finished:
                    shutil.rmtree(self._dir(study), ignore_errors=True)
                    self._cond.notify_all()
                else:
                    self._push(time.monotonic() + self.retry_delay, study)

    # ------------------------------------------------------------------ one association
    def _dir(self, study: SentStudy) -> Path:
        return self.work_dir / f"study{study.plan.index:05d}"

    def _attempt(self, study: SentStudy, aet: str) -> None:
        folder = self._dir(study)
        if not study.uids:
            paths = self.factory.write_study(folder, study.plan.modality, study.plan.instances,
                                             study_uid=study.study_uid)
            study.uids = [p.name[:-4] for p in paths]
            study.sender = aet
            study.started = time.time()
        todo = [uid for uid in study.uids if uid not in study.acknowledged and uid not in study.refused]
        if study.attempts:
            study.resent.update(todo)
        study.attempts += 1
        files = [str(folder / f"{uid}.dcm") for uid in todo]
        cmd = [STORESCU, "-v", "-nh", "-aet", aet, "-aec", self.called_ae, "-to", "10", "-ta", "30", "-td", "120",
               *self.extra_args, self.host, str(self.port), *files]
        try:
            proc = subprocess.run(cmd, env=PEER_ENV, capture_output=True, text=True, timeout=900)
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            output = f"storescu did not finish: {exc}"
        responses = storescu_responses(output)
        for uid, path in zip(todo, files):
            response = responses.get(path)
            if response is None:
                continue                          # no response: sent again later
            if is_acknowledged(response):
                study.acknowledged.add(uid)
            elif not is_retryable(response):
                study.refused[uid] = response
        if study.finished:
            study.done = time.time()
        elif len(study.problems) < 5:
            study.problems.append(_why(output, responses))


def _why(output: str, responses: dict[str, str]) -> str:
    refusals = sorted({r for r in responses.values() if not is_acknowledged(r)})
    if refusals:
        return "refused: " + "; ".join(refusals)
    errors = [line for line in output.splitlines() if line.startswith(("E:", "F:"))]
    return " / ".join(errors[:3]) or output[-200:]
