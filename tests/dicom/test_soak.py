"""Soak: over a thousand associations from three kinds of sender into one adapter.

dcmtk `storescu`, `claractl dicom send` (the CLI, several associations per run) and a pynetdicom
client send studies of 1 to 500 instances (CT, MR, US, CR; mostly a few instances, some hundreds),
1 to 8 associations at once. Some instances lack the Study Instance UID the AE groups by, so
they must be refused — with a DICOM status. Then:

- no sender hung: every instance got a C-STORE response (no timeout, no abort);
- every instance acknowledged with Success is in exactly one job's input, byte-identical;
  every refused instance is in none;
- associations over `max-associations` are refused with an A-ASSOCIATE-RJ the sender reports,
  never a timeout (checked first, with the limit held by idle associations).

This is the test that caught pynetdicom's requestor reactor stealing C-STORE responses
(docs/dicom.md "The send hang"). Its cost in CI: see docs/operations.md ("Soak test").
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from claractl.platform.dicom.scu import hand_back_responses
from claractl.platform.dicom.synthetic_studies import MODALITIES, StudyFactory
from tests.dicom.conftest import CALLED_AE, DCMTK, PEER_ENV, dataset_bytes, jobs, scp_process, wait_for

ASSOCIATIONS = 1000          # accepted associations, at least
SEED = 15
# Small images: the point is the protocol under load, not the disk's bandwidth.
SCALE = {"CT": 0.25, "MR": 0.25, "US": 0.2, "CR": 0.1}
SUCCESS = 0x0000
CLIENT_TIMEOUT = 30          # s a sender waits for a response: a hang fails the test quickly


@dataclass
class Association:
    kind: str                 # storescu | claractl | pynetdicom
    files: list[Path]
    refused: set[Path]        # instances without a Study Instance UID
    associations: int = 1     # claractl: -j
    max_send_pdu: int = 0     # storescu: --max-send-pdu (0: the peer's maximum)
    outcome: dict[Path, str] = field(default_factory=dict)   # path → "0xNNNN" or a failure
    rejected: int = 0         # A-ASSOCIATE-RJ answers before it got in


def instance_count(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.88:
        return rng.randint(1, 8)
    if roll < 0.98:
        return rng.randint(9, 60)
    return rng.randint(61, 500)


def plan(work: Path) -> list[Association]:
    rng = random.Random(SEED)
    factory = StudyFactory(scale=SCALE, seed=SEED)
    out: list[Association] = []
    accepted = 0
    while accepted < ASSOCIATIONS:
        kind = rng.choices(["storescu", "pynetdicom", "claractl"], weights=[50, 48, 2])[0]
        n = instance_count(rng)
        refused = 1 if n > 2 and rng.random() < 0.1 else 0
        folder = work / f"a{len(out):04d}"
        files = factory.write_study(folder, rng.choice(list(MODALITIES)), n, without_study_uid=refused)
        a = Association(kind, files, set(files[len(files) - refused:]))
        if kind == "claractl":
            a.associations = min(rng.randint(1, 3), n)
        elif kind == "storescu" and rng.random() < 0.3:
            a.max_send_pdu = rng.choice([4096, 16384, 131072])
        out.append(a)
        accepted += a.associations
    return out


# ----------------------------------------------------------------------------- the senders
_RESPONSE = re.compile(r"^I: Received Store Response \((.*)\)$")
_SENDING = re.compile(r"^I: Sending file: (.*)$")
_REJECTED = "Association Rejected"


def send_storescu(a: Association, port: int) -> None:
    args = [str(DCMTK / "storescu"), "-v", "-nh", "-aet", "STORESCU", "-aec", CALLED_AE,
            "-to", "10", "-ta", str(CLIENT_TIMEOUT), "-td", str(CLIENT_TIMEOUT)]
    if a.max_send_pdu:
        args += ["--max-send-pdu", str(a.max_send_pdu)]
    while True:
        proc = subprocess.run([*args, "127.0.0.1", str(port), *map(str, a.files)], env=PEER_ENV,
                              capture_output=True, text=True, timeout=300)
        output = proc.stdout + proc.stderr
        if _REJECTED in output and "Local Limit Exceeded" in output:
            a.rejected += 1
            time.sleep(0.05)
            continue
        current = None
        for line in output.splitlines():
            if m := _SENDING.match(line):
                current = Path(m[1])
            elif (m := _RESPONSE.match(line)) and current is not None:
                a.outcome[current] = "0x0000" if m[1] == "Success" else f"refused: {m[1]}"
                current = None
        for f in a.files:
            a.outcome.setdefault(f, f"no response (storescu exit {proc.returncode}): {output[-300:]}")
        return


def send_claractl(a: Association, port: int) -> None:
    cmd = [sys.executable, "-m", "claractl", "--no-color", "dicom", "send", "--json", "-j", str(a.associations),
           "--calling-ae", "CLARATEST", "--to", f"{CALLED_AE}@127.0.0.1:{port}"]
    todo = list(a.files)
    while todo:
        proc = subprocess.run([*cmd, *map(str, todo)], capture_output=True, text=True, timeout=300)
        try:
            results = json.loads(proc.stdout)["results"]
        except (ValueError, KeyError):
            raise AssertionError(f"claractl dicom send printed no JSON (exit {proc.returncode}): "
                                 f"{proc.stdout[-500:]} {proc.stderr[-1000:]}") from None
        todo = []
        for r in results:
            path = Path(r["path"])
            if r["status"] is None and "local limit exceeded" in r["message"]:
                todo.append(path)            # that association was refused: send those again
            else:
                a.outcome[path] = f"0x{r['status']:04X}" if r["status"] is not None else r["message"]
        a.rejected += bool(todo)


def send_pynetdicom(a: Association, port: int) -> None:
    datasets = [pydicom.dcmread(f) for f in a.files]
    ae = AE(ae_title="CLARATEST")
    ae.dimse_timeout = ae.network_timeout = ae.acse_timeout = CLIENT_TIMEOUT
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop_class, "1.2.840.10008.1.2.1")
    while True:
        assoc = ae.associate("127.0.0.1", port, ae_title=CALLED_AE)
        if assoc.is_rejected:
            a.rejected += 1
            time.sleep(0.05)
            continue
        assert assoc.is_established, "pynetdicom client: association neither accepted nor rejected"
        hand_back_responses(assoc)      # pynetdicom's own race; see claractl.platform.dicom.scu
        try:
            for path, ds in zip(a.files, datasets):
                if not assoc.is_established:
                    a.outcome[path] = "association lost"
                    continue
                rsp = assoc.send_c_store(ds)
                a.outcome[path] = f"0x{int(rsp.Status):04X}" if rsp and "Status" in rsp else "no response"
        finally:
            if assoc.is_established:
                assoc.release()
        return


SENDERS = {"storescu": send_storescu, "claractl": send_claractl, "pynetdicom": send_pynetdicom}


# ----------------------------------------------------------------------------- the test
@pytest.fixture
def soak_adapter(platform):
    """The adapter in its own process (the senders here must not share its GIL); its port."""
    config, store = platform
    config.dicom.max_associations = 12
    config.save()
    with scp_process(config):
        yield config.dicom.port


def audit_count(config, decision: str) -> int:
    return (config.logs_dir / "dicom-audit.log").read_text().count(f" {decision} ")


def test_over_the_limit_is_refused_with_a_reject_by_every_sender(soak_adapter, platform, tmp_path):
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(Verification)
    held = [ae.associate("127.0.0.1", soak_adapter, ae_title=CALLED_AE) for _ in range(12)]
    try:
        assert all(h.is_established for h in held)
        files = StudyFactory(scale=SCALE).write_study(tmp_path / "s", "MR", 2)
        proc = subprocess.run([str(DCMTK / "storescu"), "-aet", "STORESCU", "-aec", CALLED_AE, "127.0.0.1",
                               str(soak_adapter), *map(str, files)], env=PEER_ENV, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0 and _REJECTED in proc.stderr and "Local Limit Exceeded" in proc.stderr
        proc = subprocess.run([sys.executable, "-m", "claractl", "dicom", "send", "--json", "--calling-ae",
                               "CLARATEST", "--to", f"{CALLED_AE}@127.0.0.1:{soak_adapter}", *map(str, files)],
                              capture_output=True, text=True, timeout=120)
        messages = {r["message"] for r in json.loads(proc.stdout)["results"]}
        assert proc.returncode == 1 and messages == {
            "association rejected (result 2, source 3, reason 2: local limit exceeded)"}
        assert AE(ae_title="CLARATEST").associate("127.0.0.1", soak_adapter, ae_title=CALLED_AE,
                                                  contexts=ae.requested_contexts).is_rejected
    finally:
        for h in held:
            h.release()
    assert audit_count(platform[0], "REJECT") == 3


def test_a_thousand_associations_lose_nothing_and_never_hang(soak_adapter, platform, tmp_path):
    config, store = platform
    associations = plan(tmp_path / "send")
    # Concurrency 1, 2, … 8: eight phases of the plan, each with one sender more at once.
    phases = [associations[i::8] for i in range(8)]
    started = time.monotonic()
    for width, phase in enumerate(phases, start=1):
        with ThreadPoolExecutor(width) as pool:
            list(pool.map(lambda a: SENDERS[a.kind](a, soak_adapter), phase))

    sending = time.monotonic() - started
    outcomes = Counter()
    problems = []
    for a in associations:
        for f in a.files:
            got = a.outcome.get(f, "not reported")
            expected_ok = f not in a.refused
            outcomes[(a.kind, got if not got.startswith("refused") else "refused")] += 1
            if expected_ok and got != "0x0000":
                problems.append(f"{a.kind}: {f.name}: {got}")
            if not expected_ok and not (got.startswith("0xA900") or got.startswith("refused")):
                problems.append(f"{a.kind}: {f.name} should be refused with 0xA900, got {got}")
    assert not problems, f"{len(problems)} instances without the expected response: {problems[:10]}"

    accepted = audit_count(config, "ACCEPT")
    assert accepted >= ASSOCIATIONS

    # Every acknowledged instance in exactly one job's input, byte-identical (groups close 1 s
    # after their last instance).
    acknowledged = {f.name[:-4]: f for a in associations for f in a.files if f not in a.refused}
    refused = {f.name[:-4] for a in associations for f in a.refused}

    def stored_instances() -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for job in jobs(store):
            for p in (config.payloads_dir / job.payload_id / "input").iterdir():
                found.setdefault(p.name[:-4], []).append(p)
        return found

    wait_for(lambda: sum(map(len, stored_instances().values())) >= len(acknowledged), timeout=120, interval=0.5)
    stored = stored_instances()
    assert set(stored) == set(acknowledged)
    assert not refused & set(stored)
    duplicates = [uid for uid, paths in stored.items() if len(paths) != 1]
    assert not duplicates, duplicates[:5]
    different = [uid for uid, f in acknowledged.items() if dataset_bytes(stored[uid][0]) != dataset_bytes(f)]
    assert not different, different[:5]
    print(f"\nsoak: sent in {sending:.0f} s, checked in {time.monotonic() - started - sending:.0f} s; "
          f"{accepted} associations accepted, {audit_count(config, 'REJECT')} rejected, "
          f"{len(acknowledged)} instances stored, {len(refused)} refused; by sender: {dict(outcomes)}")
