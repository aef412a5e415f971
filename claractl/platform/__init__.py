"""The runtime services a target provisions: API, store, engine, DICOM adapter, inference, render.

These modules never import `claractl.cli`, `claractl.plan` or `claractl.targets`.
"""
