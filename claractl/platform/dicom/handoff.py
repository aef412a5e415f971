"""Hand a closed group to the engine: one payload + one started job per mapped pipeline.

Idempotent across crashes: the payload id is derived from (group id, pipeline), so a group
closed again after a restart skips the pipelines whose job was already committed.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from claractl.platform.audit import trail
from claractl.platform.config import PlatformConfig
from claractl.platform.dicom.access import AEConfig
from claractl.platform.dicom.groups import Group, safe_name
from claractl.platform.dicom.storage import make_dirs_durable
from claractl.platform.store import Store
from claractl.platform.store.jobs import create_job
from claractl.platform.store.models import AuditOutcome, Payload, Pipeline
from claractl.platform.store.payloads import fsync_dir

log = logging.getLogger("claractl.dicom")
_NS = uuid.UUID("6f1c7a52-3f0e-4d8a-9a51-0d1c4a7e2b11")


def payload_id_for(group_id: str, pipeline_key: str) -> str:
    return str(uuid.uuid5(_NS, f"{group_id}/{pipeline_key}"))


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except FileExistsError:
        pass
    except OSError:
        shutil.copyfile(src, dst)
        with open(dst, "rb+") as f:
            os.fsync(f.fileno())


def close_group(config: PlatformConfig, store: Store, group: Group, ae: AEConfig | None) -> list[str]:
    """Create the jobs for `group`; remove its directory; return the new job ids."""
    files = sorted(group.dir.glob("*.dcm"))
    if not files:
        shutil.rmtree(group.dir, ignore_errors=True)
        return []
    job_ids: list[str] = []
    routed = False
    pipelines = ae.pipelines if ae else ()
    metadata = {
        "calling_ae": group.calling_ae, "called_ae": group.called_ae, "peer": group.peer,
        "patient_id": group.patient_id, "study_uid": group.study_uid,
        "series_uids": sorted(group.series_uids), "instances": len(files), "group_key": group.key,
    }
    for name in pipelines:
        key = name.lower()
        pid = payload_id_for(group.id, key)
        with store.session() as s:
            pipeline = s.scalars(select(Pipeline).where(Pipeline.name_key == key)).first()
            if pipeline is None:
                log.error("DICOM AE %s maps to pipeline %r, which does not exist; no job for group %s",
                          group.called_ae, name, group.key)
                continue
            routed = True
            if s.get(Payload, pid) is not None:
                continue        # committed before a crash
            input_dir = config.payloads_dir / pid / "input"
            make_dirs_durable(input_dir)
            for f in files:
                _link_or_copy(f, input_dir / f.name)
            fsync_dir(input_dir)
            payload = Payload(id=pid)
            s.add(payload)
            s.flush()
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
            job = create_job(s, pipeline, payload, name=f"{pipeline.name}-{group.called_ae}-{stamp}",
                             priority=ae.priority if ae and ae.priority else "normal",
                             metadata=dict(metadata), start=True)
            trail.record(s, "study", "received", actor=group.calling_ae, source=group.peer, target=group.called_ae,
                         study_uid=group.study_uid, patient_id=group.patient_id, job_id=job.id,
                         detail={"instances": len(files), "series": len(group.series_uids),
                                 "pipeline": pipeline.name})
            job_ids.append(job.id)
        log.info("DICOM group %s/%s closed: job %s (%s), %d instances",
                 group.called_ae, group.key, job_ids[-1], pipeline.name, len(files))
    if routed:
        shutil.rmtree(group.dir, ignore_errors=True)
    else:
        # Nothing to run it: keep the data for a human instead of deleting a patient's images.
        target = config.dicom_dir / ".unrouted" / safe_name(group.called_ae) / group.dir.name
        make_dirs_durable(target.parent)
        os.replace(group.dir, target)
        log.warning("DICOM group %s/%s has no pipeline to run (AE %s); kept in %s",
                    group.called_ae, group.key, "unknown" if ae is None else "without pipelines", target)
        trail.emit(store, "study", "unrouted", outcome=AuditOutcome.MINOR_FAILURE, actor=group.calling_ae,
                   source=group.peer, target=group.called_ae, study_uid=group.study_uid, patient_id=group.patient_id,
                   detail={"instances": len(files), "reason": f"no pipeline to run; kept in {target}"})
    return job_ids
