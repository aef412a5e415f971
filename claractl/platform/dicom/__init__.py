"""DICOM adapter: SCP (receive, access control, durable storage, grouping, job hand-off) and the
SCU export agent. See docs/dicom.md."""

from claractl.platform.dicom.adapter import DicomAdapter
from claractl.platform.dicom.export import DicomExportAgent

__all__ = ["DicomAdapter", "DicomExportAgent"]
