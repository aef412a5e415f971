"""The audit trail sent on as DICOM audit messages (PS3.15 A.5) in RFC 5424 syslog, received by a
real rsyslog over TCP and over TLS; the messages' structure and what they carry."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from claractl.platform.audit import trail
from claractl.platform.audit.atna import message
from claractl.platform.audit.syslog import SyslogForwarder
from claractl.platform.config import PlatformConfig
from claractl.platform.store import Store
from tests.dicom.conftest import wait_for
from tests.dicom.tls_certs import make_pki
from tests.ports import free_port, wait_listening

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
FIELDS = "%pri%|%protocol-version%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%msg%\\n"
SCHEMA_ORDER = ["EventIdentification", "ActiveParticipant", "AuditSourceIdentification",
                "ParticipantObjectIdentification"]


class Rsyslog:
    """rsyslogd in the foreground with its own config: imtcp (plain or TLS) → one file, one line per
    message with the parsed RFC 5424 fields."""

    def __init__(self, work: Path, pki=None) -> None:
        self.work, self.port, self.out = work, free_port(), work / "received.log"
        work.mkdir(parents=True, exist_ok=True)
        tls_global = (f' defaultNetstreamDriverCAFile="{pki.ca}" defaultNetstreamDriverCertFile="{pki.pacs.cert}"'
                      f' defaultNetstreamDriverKeyFile="{pki.pacs.key}"') if pki else ""
        tls_module = ' streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon"' if pki else ""
        (work / "rsyslog.conf").write_text(
            f'global(workDirectory="{work}"{tls_global})\n'
            f'module(load="imtcp"{tls_module})\n'
            f'input(type="imtcp" port="{self.port}")\n'
            f'template(name="fields" type="string" string="{FIELDS}")\n'
            f'*.* action(type="omfile" file="{self.out}" template="fields")\n')
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Rsyslog":
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(self.work / "rsyslog.conf"), "-i",
                                      str(self.work / "rsyslogd.pid")], stdout=subprocess.DEVNULL,
                                     stderr=open(self.work / "rsyslogd.log", "ab"))
        wait_listening(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None

    def messages(self) -> list[list[str]]:
        if not self.out.exists():
            return []
        return [line.split("|", 7) for line in self.out.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def store(tmp_path):
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    s = Store(config.database_url)
    s.create_all()
    yield config, s
    s.dispose()


def _events(store: Store) -> None:
    """One of each kind the trail records."""
    with store.session() as s:
        trail.record(s, "study", "received", actor="MODALITY1", source="10.1.2.3:40000", target="ORGANSEG",
                     study_uid="1.2.3.4", patient_id="PAT-7", job_id="j1", detail={"instances": 120})
        trail.record(s, "job", "started", actor="engine", target="ct-seg", study_uid="1.2.3.4", patient_id="PAT-7",
                     job_id="j1", detail={"pipeline": "ct-seg"})
        trail.record(s, "export", "failed", outcome=8, actor="CLARA", target="pacs", study_uid="1.2.3.4",
                     patient_id="PAT-7", job_id="j1",
                     detail={"ae_title": "PACS1", "address": "10.9.9.9:104", "reason": "gave up after 5 attempts"})
    trail.emit(store, "association", "rejected", outcome=4, actor="INTRUDER", source="10.6.6.6:1234",
               target="ORGANSEG", detail={"reason": "calling AE not recognised"})
    trail.emit(store, "api", "PUT", actor="api (bearer token)", source="10.0.0.2:5000",
               target="/api/v1/destinations/pacs", detail={"status": 200})
    trail.flush(store)


def test_each_kind_of_event_becomes_a_dicom_audit_message_with_ids_only(store):
    from claractl.platform.audit.query import list_events
    config, s = store
    _events(s)
    with s.session() as session:
        events = list_events(session, after_id=0)
    xml = {e["kind"]: message(e, ae_title="CLARA", source_id="claractl@test", site_id="HOSP1") for e in events}
    expected = {"study": ("110104", "C"), "job": ("110103", "R"), "export": ("110104", "R"),
                "association": ("110113", "E"), "api": ("110113", "E")}
    for kind, (event_id, action) in expected.items():
        root = ET.fromstring(xml[kind])
        tags = [child.tag for child in root]
        assert tags == sorted(tags, key=SCHEMA_ORDER.index), (kind, tags)     # the schema's element order
        ident = root.find("EventIdentification")
        assert (ident.find("EventID").get("csd-code"), ident.get("EventActionCode")) == (event_id, action)
        assert root.find("AuditSourceIdentification").get("AuditEnterpriseSiteID") == "HOSP1"
    study = ET.fromstring(xml["study"])
    objects = {o.find("ParticipantObjectIDTypeCode").get("originalText"): o.get("ParticipantObjectID")
               for o in study.findall("ParticipantObjectIdentification")}
    assert objects == {"Study Instance UID": "1.2.3.4", "Patient Number": "PAT-7"}
    roles = {p.find("RoleIDCode").get("originalText"): (p.get("UserID"), p.get("NetworkAccessPointID"))
             for p in study.findall("ActiveParticipant")}
    assert roles == {"Source Role ID": ("MODALITY1", "10.1.2.3"), "Destination Role ID": ("ORGANSEG", None)}
    failed = ET.fromstring(xml["export"]).find("EventIdentification")
    assert failed.get("EventOutcomeIndicator") == "8"
    assert failed.find("EventOutcomeDescription").text == "gave up after 5 attempts"
    assert ET.fromstring(xml["api"]).find("EventIdentification/EventTypeCode").get("originalText") == \
        "Network Configuration"
    assert "ParticipantObjectName" not in "".join(xml.values())          # no patient name, ever


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_the_trail_reaches_rsyslog_in_order_and_survives_its_restart(store, tmp_path, transport):
    config, s = store
    pki = make_pki(tmp_path / "pki") if transport == "tls" else None
    rsyslog = Rsyslog(tmp_path / "rsyslog", pki).start()
    config.audit.syslog = f"{transport}://127.0.0.1:{rsyslog.port}"
    if pki:
        config.audit.syslog_ca_certificates = str(pki.ca)
    config.audit.site_id = "HOSP1"
    forwarder = SyslogForwarder(config, s, poll_interval=0.1)
    forwarder.start()
    try:
        _events(s)                                        # recorded after the first start: all sent
        wait_for(lambda: len(rsyslog.messages()) == 5, timeout=30)
        rsyslog.stop()
        _events(s)                                        # while the repository is down
        time.sleep(1.5)
        assert forwarder.status()["failures"] >= 1
        rsyslog.start()
        wait_for(lambda: len(rsyslog.messages()) == 10, timeout=60)
    finally:
        forwarder.stop()
        rsyslog.stop()
    received = rsyslog.messages()
    for pri, version, _, host, app, procid, msgid, msg in received:
        assert (pri, version, app, msgid, procid) == ("85", "1", "claractl", "DICOM+RFC3881", str(os.getpid()))
        assert msg.startswith("\ufeff<AuditMessage>")
    kinds = [ET.fromstring(m[7].lstrip("\ufeff")).find("EventIdentification/EventID").get("originalText")
             for m in received]
    assert kinds == ["DICOM Instances Transferred", "DICOM Instances Accessed", "DICOM Instances Transferred",
                     "Security Alert", "Security Alert"] * 2
    assert forwarder.status()["sent"] == 10
