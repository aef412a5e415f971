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


def test_dicom_tls_settings_reach_the_platform_config_and_the_key_password_is_redacted():
    tls = {"port": 2762, "certificate": "/p/adapter.pem", "private-key": "/p/adapter.key",
           "private-key-password": "hunter2", "ca-certificates": "/p/ca.pem", "verify-clients": True}
    config = config_with_services(PlatformConfig(), {"dicom-adapter": {"tls": tls}})
    d = config.dicom
    assert (d.tls_port, d.tls_certificate, d.tls_private_key, d.tls_private_key_password, d.tls_ca_certificates,
            d.tls_verify_clients) == (2762, "/p/adapter.pem", "/p/adapter.key", "hunter2", "/p/ca.pem", True)
    assert services_from_config(config.to_dict(redact=False))["dicom-adapter"]["tls"] == tls
    shown = config.to_dict()            # what GET /config answers
    assert shown["dicom"]["tls_private_key_password"] == "(sensitive)" and "hunter2" not in str(shown)


def test_engine_settings_reach_the_platform_config_and_read_back():
    platform = {"job-timeout": 120, "payload-retention": 3600, "service-idle": 15}
    config = config_with_services(PlatformConfig(), {"platform": platform})
    assert (config.engine.job_timeout, config.engine.payload_retention, config.engine.service_idle) == (120, 3600, 15)
    back = services_from_config(config.to_dict(redact=False))["platform"]
    assert {k: back[k] for k in platform} == platform
