"""Nothing lost: what the senders were told against what the platform made of it and what the PACS
holds. Returns the problems found (empty: nothing lost)."""

from __future__ import annotations

from pathlib import Path

from claractl.platform.store.models import ExportState, JobState, JobStatus

from .observe import StudyRecord


def problems(recs: list[StudyRecord], pacs_uids: set[str], payloads_dir: Path | None = None) -> list[str]:
    """- every instance was acknowledged (the senders retry what was refused for lack of room or cut off);
    - the jobs of a study hold exactly its acknowledged instances — each in one job, or in two when
      the sender sent it again after getting no response (checked file by file when `payloads_dir`
      still holds the job inputs, else by count);
    - every job stopped HEALTHY with one export task, SUCCEEDED, whose result the PACS holds."""
    out: list[str] = []
    for rec in recs:
        s = rec.study
        name = f"study {s.plan.index} ({s.plan.modality}, {s.plan.instances} inst, {s.sender})"
        if not s.finished:
            missing = len(s.uids) - len(s.acknowledged) - len(s.refused) if s.uids else s.plan.instances
            out.append(f"{name}: {missing} instances never acknowledged: {'; '.join(s.problems[-2:])}")
            continue
        if s.refused:
            out.append(f"{name}: {len(s.refused)} refused: {sorted(set(s.refused.values()))}")
        if not rec.jobs:
            out.append(f"{name}: no job")
            continue
        if payloads_dir is not None:
            out += _exact_inputs(name, rec, payloads_dir)
        else:
            held = sum(j["instances"] for j in rec.jobs)
            if not len(s.acknowledged) <= held <= len(s.acknowledged) + len(s.resent):
                out.append(f"{name}: its jobs hold {held} instances, {len(s.acknowledged)} were acknowledged")
        for job in rec.jobs:
            if (job["state"], job["status"]) != (JobState.STOPPED, JobStatus.HEALTHY):
                out.append(f"{name}: job {job['id']} {job['state']} {job['status']}: {job['message']}")
                continue
            tasks = [e for e in rec.exports if e["job_id"] == job["id"]]
            if len(tasks) != 1 or tasks[0]["state"] != ExportState.SUCCEEDED:
                out.append(f"{name}: job {job['id']} export tasks {[(e['state'], e['message']) for e in tasks]}")
                continue
            for f in tasks[0]["files"]:
                if Path(f).stem not in pacs_uids:
                    out.append(f"{name}: job {job['id']} result {Path(f).name} is not in the PACS")
    return out


def _exact_inputs(name: str, rec: StudyRecord, payloads_dir: Path) -> list[str]:
    held: dict[str, int] = {}
    for job in rec.jobs:
        for p in (payloads_dir / job["payload_id"] / "input").glob("*.dcm"):
            held[p.stem] = held.get(p.stem, 0) + 1
    s = rec.study
    out = []
    if set(held) != s.acknowledged:
        out.append(f"{name}: {len(s.acknowledged - set(held))} acknowledged instances in no job, "
                   f"{len(set(held) - s.acknowledged)} unexpected ones")
    twice = [uid for uid, n in held.items() if n > 1 and uid not in s.resent or n > 2]
    if twice:
        out.append(f"{name}: {len(twice)} instances in more than one job although sent once")
    return out
