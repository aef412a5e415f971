"""Audit trail events as DICOM audit messages (PS3.15 Annex A.5, the XML hospital audit
repositories ingest, IHE ATNA).

Which message each event becomes:

| event | message (EventID) | action | event type |
| --- | --- | --- | --- |
| association accepted / rejected | Security Alert (110113) | E | Node Authentication (110126) |
| study received (instances handed to a job) | DICOM Instances Transferred (110104) | C | |
| job started / stopped | DICOM Instances Accessed (110103) | R | |
| export delivered / failed | DICOM Instances Transferred (110104) | R | |
| API write | Security Alert (110113) | E | Network Configuration (110128) for AE titles, sources, destinations; Software Configuration (110131) otherwise |

A job created, or an export task registered, is in the store's trail only (the transfer and
access messages around it say the same). Participants are named by AE title, network address
and role; the study by its Study Instance UID, the patient by the Patient ID only — no name,
no pixel data, nothing else of the dataset.
"""

from __future__ import annotations

import base64
from typing import Any
from xml.etree import ElementTree as ET

from claractl.platform.store.models import AuditOutcome

DCM, RFC3881 = "DCM", "RFC-3881"
SECURITY_ALERT = ("110113", "Security Alert")
INSTANCES_TRANSFERRED = ("110104", "DICOM Instances Transferred")
INSTANCES_ACCESSED = ("110103", "DICOM Instances Accessed")
NODE_AUTHENTICATION = ("110126", "Node Authentication")
NETWORK_CONFIGURATION = ("110128", "Network Configuration")
SOFTWARE_CONFIGURATION = ("110131", "Software Configuration")
SOURCE_ROLE, DESTINATION_ROLE = ("110153", "Source Role ID"), ("110152", "Destination Role ID")
APPLICATION_ROLE = ("110150", "Application")
NETWORK_PATHS = ("/api/v1/ae-titles", "/api/v1/sources", "/api/v1/destinations")


def _code(parent: ET.Element, tag: str, code: tuple[str, str], system: str = DCM) -> None:
    ET.SubElement(parent, tag, {"csd-code": code[0], "codeSystemName": system, "originalText": code[1]})


def _host(address: str) -> str:
    """"10.0.0.7:51234" → "10.0.0.7"; "[::1]:5" → "::1"."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
    return host.strip("[]")


class _Message:
    def __init__(self, event_id: tuple[str, str], action: str, event: dict[str, Any],
                 type_code: tuple[str, str] | None = None) -> None:
        # Kept apart and put together in the schema's order: event, participants, source, objects.
        self.participants: list[ET.Element] = []
        self.objects: list[ET.Element] = []
        self.audit_source: ET.Element | None = None
        outcome = int(event["outcome"])
        self.ident = ident = ET.Element("EventIdentification", {
            "EventActionCode": action, "EventDateTime": event["at"], "EventOutcomeIndicator": str(outcome)})
        _code(ident, "EventID", event_id)
        if type_code is not None:
            _code(ident, "EventTypeCode", type_code)
        reason = (event.get("detail") or {}).get("reason")
        if outcome != AuditOutcome.SUCCESS and reason:
            ET.SubElement(ident, "EventOutcomeDescription").text = str(reason)

    def participant(self, user_id: str, requestor: bool, address: str = "",
                    role: tuple[str, str] | None = None) -> None:
        attrs = {"UserID": user_id or "unknown", "UserIsRequestor": "true" if requestor else "false"}
        host = _host(address) if address else ""
        if host:
            attrs.update(NetworkAccessPointID=host,
                         NetworkAccessPointTypeCode="2" if host.replace(".", "").isdigit() or ":" in host else "1")
        p = ET.Element("ActiveParticipant", attrs)
        self.participants.append(p)
        if role is not None:
            _code(p, "RoleIDCode", role)

    def source(self, source_id: str, site_id: str) -> None:
        attrs = {"AuditSourceID": source_id}
        if site_id:
            attrs["AuditEnterpriseSiteID"] = site_id
        self.audit_source = s = ET.Element("AuditSourceIdentification", attrs)
        ET.SubElement(s, "AuditSourceTypeCode", {"csd-code": "4", "codeSystemName": DCM,
                                                 "originalText": "Application Server"})

    def study(self, event: dict[str, Any]) -> None:
        if event.get("study_uid"):
            o = self._object({
                "ParticipantObjectID": event["study_uid"], "ParticipantObjectTypeCode": "2",
                "ParticipantObjectTypeCodeRole": "3"})
            _code(o, "ParticipantObjectIDTypeCode", ("110180", "Study Instance UID"))
            instances = (event.get("detail") or {}).get("instances")
            if instances:
                ET.SubElement(o, "ParticipantObjectDetail", {"type": "NumberOfInstances",
                                                              "value": _b64(str(instances))})
        if event.get("patient_id"):
            o = self._object({
                "ParticipantObjectID": event["patient_id"], "ParticipantObjectTypeCode": "1",
                "ParticipantObjectTypeCodeRole": "1"})
            _code(o, "ParticipantObjectIDTypeCode", ("2", "Patient Number"), RFC3881)

    def resource(self, uri: str) -> None:
        o = self._object({
            "ParticipantObjectID": uri, "ParticipantObjectTypeCode": "2", "ParticipantObjectTypeCodeRole": "13"})
        _code(o, "ParticipantObjectIDTypeCode", ("12", "URI"), RFC3881)

    def _object(self, attrs: dict[str, str]) -> ET.Element:
        o = ET.Element("ParticipantObjectIdentification", attrs)
        self.objects.append(o)
        return o

    def xml(self) -> str:
        root = ET.Element("AuditMessage")
        root.extend([self.ident, *self.participants, *([self.audit_source] if self.audit_source is not None else []),
                     *self.objects])
        return ET.tostring(root, encoding="unicode")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def message(event: dict[str, Any], *, ae_title: str, source_id: str, site_id: str = "") -> str | None:
    """The DICOM audit message for a trail event (as query.as_dict gives it), or None for events
    that have none (see the module doc). `ae_title` is our own, for participants that are us."""
    kind, action, detail = event["kind"], event["action"], event.get("detail") or {}
    if kind == "association":
        m = _Message(SECURITY_ALERT, "E", event, NODE_AUTHENTICATION)
        m.participant(event["actor"], True, event["source"])
        m.participant(event["target"] or ae_title, False, role=APPLICATION_ROLE)
    elif kind == "study" and action == "received":
        m = _Message(INSTANCES_TRANSFERRED, "C", event)
        m.participant(event["actor"], True, event["source"], SOURCE_ROLE)
        m.participant(event["target"] or ae_title, False, role=DESTINATION_ROLE)
        m.study(event)
    elif kind == "job" and action in ("started", "stopped"):
        m = _Message(INSTANCES_ACCESSED, "R", event)
        m.participant(f"{ae_title} pipeline {detail.get('pipeline', '')}".strip(), True, role=APPLICATION_ROLE)
        m.study(event)
    elif kind == "export" and action in ("delivered", "failed"):
        m = _Message(INSTANCES_TRANSFERRED, "R", event)
        m.participant(ae_title, True, role=SOURCE_ROLE)
        m.participant(detail.get("ae_title") or event["target"], False, detail.get("address", ""), DESTINATION_ROLE)
        m.study(event)
    elif kind == "api":
        path = event["target"]
        m = _Message(SECURITY_ALERT, "E", event,
                     NETWORK_CONFIGURATION if path.startswith(NETWORK_PATHS) else SOFTWARE_CONFIGURATION)
        m.participant(event["actor"], True, event["source"])
        m.resource(f"{event['action']} {path}")
    else:
        return None
    m.source(source_id, site_id)
    return m.xml()
