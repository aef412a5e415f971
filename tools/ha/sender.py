"""A modality that keeps sending: a new small study every `interval` s, one dcmtk `storescu`
association per study, and — like a modality's send queue — the study again (what was not
acknowledged) after a refused or failed association.

Every association is recorded with its outcome, as the test and the bench count them:
- `succeeded`: every instance acknowledged;
- `refused`: nothing was sent — an A-ASSOCIATE-RJ (a DICOM status: "rejected") or no association
  at all (TCP refused / no answer: "no association");
- `failed`: the association broke after it was accepted (data may have been sent, some
  instances may be unacknowledged) — what a rolling apply must never cause.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from claractl.platform.dicom.synthetic_studies import StudyFactory
from tools.peak_load.senders import PEER_ENV, STORESCU, is_acknowledged, storescu_responses

RETRY_DELAY = 1.0
ECHOSCU = "/usr/bin/echoscu"          # dcmtk's, like STORESCU


@dataclass
class Attempt:
    study: int
    started: float
    ended: float
    outcome: str           # succeeded | refused | failed
    detail: str
    acknowledged: int


@dataclass
class Study:
    index: int
    study_uid: str
    paths: list[Path]
    acknowledged: set[str] = field(default_factory=set)     # SOP Instance UIDs
    retry_at: float = 0.0

    @property
    def uids(self) -> list[str]:
        return [p.name[:-4] for p in self.paths]

    @property
    def done(self) -> bool:
        return len(self.acknowledged) == len(self.paths)


def classify(returncode: int, output: str, sent: int, acknowledged: int) -> tuple[str, str]:
    if returncode == 0 and acknowledged == sent:
        return "succeeded", ""
    errors = " / ".join(line for line in output.splitlines() if line.startswith(("E:", "F:")))[:300]
    if acknowledged == 0 and "Association Rejected" in output:
        return "refused", "rejected: " + errors
    if acknowledged == 0 and "Association Request Failed" in output:
        return "refused", "no association: " + errors
    return "failed", errors or output[-300:]


class SteadySender:
    def __init__(self, host: str, port: int, called_ae: str, calling_ae: str, work_dir: Path,
                 interval: float = 2.0, instances: int = 3) -> None:
        self.host, self.port, self.called_ae, self.calling_ae = host, port, called_ae, calling_ae
        self.work_dir, self.interval, self.instances = Path(work_dir), interval, instances
        self.factory = StudyFactory(scale={"CT": 0.125})          # 64 × 64: the network is not what is measured
        self.studies: list[Study] = []
        self.attempts: list[Attempt] = []
        self._stop_new = threading.Event()
        self._thread: threading.Thread | None = None
        self._settle_until = 0.0

    def start(self, reachable_within: float = 60.0) -> "SteadySender":
        self._wait_reachable(reachable_within)
        self._thread = threading.Thread(target=self._run, name="steady-sender", daemon=True)
        self._thread.start()
        return self

    def _wait_reachable(self, timeout: float) -> None:
        """Until a C-ECHO is answered, as a modality is switched on only once its peer answers. A
        Service whose pods just became Ready can refuse TCP for a moment (kube-proxy not yet
        programmed): that is before the go-live, not part of what the sender measures."""
        deadline = time.monotonic() + timeout
        while True:
            echo = subprocess.run([ECHOSCU, "-aet", self.calling_ae, "-aec", self.called_ae, self.host,
                                   str(self.port)], capture_output=True, text=True, timeout=30, env=PEER_ENV)
            if echo.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.called_ae}@{self.host}:{self.port} did not answer a C-ECHO within "
                                   f"{timeout:.0f} s: {echo.stdout.strip()} {echo.stderr.strip()}"[:500])
            time.sleep(0.2)

    def stop(self, settle: float = 120.0) -> None:
        """No new studies; keep resending unacknowledged ones for up to `settle` s."""
        self._settle_until = time.monotonic() + settle
        self._stop_new.set()
        if self._thread is not None:
            self._thread.join(settle + 60)

    def _run(self) -> None:
        next_new = time.monotonic()
        while True:
            now = time.monotonic()
            retry = next((s for s in self.studies if not s.done and s.retry_at <= now), None)
            if retry is not None:
                self._send(retry)
                continue
            if self._stop_new.is_set():
                if all(s.done for s in self.studies) or now > self._settle_until:
                    return
                time.sleep(0.2)
                continue
            if now >= next_new:
                next_new = max(next_new + self.interval, now)
                self._send(self._new_study())
                continue
            time.sleep(min(0.05, next_new - now))

    def _new_study(self) -> Study:
        index = len(self.studies)
        folder = self.work_dir / f"study{index:05d}"
        paths = self.factory.write_study(folder, "CT", self.instances)
        study = Study(index, "", paths)
        self.studies.append(study)
        return study

    def _send(self, study: Study) -> None:
        todo = [p for p in study.paths if p.name[:-4] not in study.acknowledged]
        started = time.time()
        cmd = [STORESCU, "-v", "-nh", "-aet", self.calling_ae, "-aec", self.called_ae, "-to", "10", "-ta", "10",
               "-td", "30", self.host, str(self.port), *map(str, todo)]
        try:
            proc = subprocess.run(cmd, env=PEER_ENV, capture_output=True, text=True, timeout=120)
            code, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"storescu did not finish: {exc}"
        responses = storescu_responses(output)
        acked = [p for p in todo if is_acknowledged(responses.get(str(p), ""))]
        study.acknowledged.update(p.name[:-4] for p in acked)
        outcome, detail = classify(code, output, len(todo), len(acked))
        self.attempts.append(Attempt(study.index, started, time.time(), outcome, detail, len(acked)))
        if not study.done:
            study.retry_at = time.monotonic() + RETRY_DELAY

    # ---- figures ------------------------------------------------------------------------------
    def counts(self, since: float = 0.0, until: float = float("inf")) -> dict[str, int]:
        out = {"succeeded": 0, "refused": 0, "failed": 0}
        for a in self.attempts:
            if since <= a.started <= until:
                out[a.outcome] += 1
        return out

    def longest_gap(self, since: float | None = None, until: float | None = None) -> float:
        """Longest time without a successful association ending, within [since, until] (each
        bound, when given, counts as an edge: a window that starts with an outage shows it)."""
        lo, hi = since if since is not None else 0.0, until if until is not None else float("inf")
        ends = sorted(a.ended for a in self.attempts if a.outcome == "succeeded" and lo <= a.ended <= hi)
        edges = ([since] if since is not None else []) + ends + ([until] if until is not None else [])
        return max((b - a for a, b in zip(edges, edges[1:])), default=0.0)

    def acknowledged(self) -> set[str]:
        return {uid for s in self.studies for uid in s.acknowledged}
