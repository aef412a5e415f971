"""The audit trail: who did what, from where, with which outcome — associations, studies received,
jobs, exports and API writes — as events in the store (trail.py, query.py), optionally sent on
as DICOM audit messages (atna.py) over syslog (syslog.py). See docs/operations.md."""
