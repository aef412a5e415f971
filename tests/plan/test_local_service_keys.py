"""The project's service settings map onto the platform config the local target writes, and back."""

from __future__ import annotations

from claractl.platform.config import PlatformConfig
from claractl.targets.local import config_with_services, services_from_config


def test_dicom_storage_settings_reach_the_platform_config_and_read_back():
    storage = {"watermark-percent": 90, "reserve-mb": 2048, "spool-segment-mb": 16}
    config = config_with_services(PlatformConfig(), {"dicom-adapter": {"storage": storage}})
    assert (config.dicom.watermark_percent, config.dicom.reserve_mb, config.dicom.spool_segment_mb) == (90, 2048, 16)
    back = services_from_config(config.to_dict(redact=False))
    assert back["dicom-adapter"]["storage"] == storage
