"""Content digest of a Triton model directory, as the platform records it on upload (PUT
/models/{name}), so plan compares without uploading: one algorithm, in claractl.platform.digest
(docs/platform.md), which imports nothing of the platform runtime.
"""

from claractl.platform.digest import model_digest

__all__ = ["model_digest"]
