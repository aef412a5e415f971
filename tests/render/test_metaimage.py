"""MetaImage volumes (.mha, .mhd + data file) — what Clara's reference pipelines publish for the
render server — open in the viewer like NIfTI: found in the payload or published through a
`renderserver` export task, converted once to NIfTI with their voxels and geometry."""

from __future__ import annotations

import httpx
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from .support import add_job, ct_phantom

SPACING, ORIGIN = (0.8, 0.7, 2.5), (-100.0, -80.0, 30.0)


def write_metaimage(path, data_xyz: np.ndarray, compress: bool) -> None:
    image = sitk.GetImageFromArray(np.ascontiguousarray(data_xyz.transpose(2, 1, 0)))   # SimpleITK: z, y, x
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), compress)


def job_with_metaimages(platform) -> tuple[str, np.ndarray, np.ndarray]:
    job_id = add_job(platform, with_volume=False)
    volume, labels = ct_phantom()
    with platform.store.session() as s:
        from claractl.platform.store.models import Job
        root = platform.config.payloads_dir / s.get(Job, job_id).payload_id
    write_metaimage(root / "operators/dicom-reader/ct.mha", volume, compress=True)
    write_metaimage(root / "operators/ai-inference/ct.mhd", labels, compress=False)     # ct.mhd + ct.raw
    (root / "operators/ai-inference/labels.json").write_text('{"1": "liver", "2": "spleen"}')
    return job_id, volume, labels


def test_metaimage_volume_and_label_open_like_nifti(platform, tmp_path):
    job_id, volume, labels = job_with_metaimages(platform)
    viewer = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()
    assert [(s["key"], s["origin"]) for s in viewer["series"]] == [("ct", "payload")]
    series = viewer["series"][0]
    assert [(g["value"], g["name"]) for g in series["segments"]] == [(1, "liver"), (2, "spleen")]
    for kind, expected in (("volume", volume), ("label", labels)):
        body = httpx.get(platform.url + series[f"{kind}_url"]).content
        out = tmp_path / f"{kind}.nii.gz"
        out.write_bytes(body)
        img = nib.load(str(out))
        assert np.array_equal(np.asanyarray(img.dataobj), expected)                    # same voxels, same order
        # ITK's LPS geometry in NIfTI's RAS: x and y flip sign, spacing kept.
        assert np.allclose(img.affine[:3, :3], np.diag([-SPACING[0], -SPACING[1], SPACING[2]]))
        assert np.allclose(img.affine[:3, 3], [-ORIGIN[0], -ORIGIN[1], ORIGIN[2]])


def test_published_metaimages_are_indexed_by_the_renderserver_agent(platform):
    from claractl.platform.store.models import ExportTask
    job_id, _volume, _labels = job_with_metaimages(platform)
    with platform.store.session() as s:
        task = ExportTask(job_id=job_id, agent="renderserver",
                          files=["operators/dicom-reader/ct.mha", "operators/ai-inference/ct.mhd",
                                 "operators/ai-inference/ct.raw"])
        s.add(task)
        s.flush()
        task_id = task.id
    assert platform.service.agent.run_once() == 1
    with platform.store.session() as s:
        status = s.get(ExportTask, task_id).file_status
    assert status == {"operators/dicom-reader/ct.mha": "indexed as volume",
                      "operators/ai-inference/ct.mhd": "indexed as label",
                      "operators/ai-inference/ct.raw": "indexed (not viewable)"}
    viewer = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()
    assert [(s["key"], s["origin"]) for s in viewer["series"]] == [("ct", "renderserver")]
    assert viewer["series"][0]["label_url"].endswith("/ct/label.nii.gz")


def test_a_damaged_metaimage_gives_a_message_not_a_blank_viewer(platform):
    job_id = add_job(platform, with_volume=False)
    with platform.store.session() as s:
        from claractl.platform.store.models import Job
        root = platform.config.payloads_dir / s.get(Job, job_id).payload_id
    (root / "operators/dicom-reader").mkdir(parents=True)
    (root / "operators/dicom-reader/broken.mha").write_text("ObjectType = Image\nNDims = 3\n")
    viewer = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()
    assert viewer["series"] == []
    assert viewer["message"].startswith("the job's images could not be read: broken.mha: not a readable MetaImage")


@pytest.mark.browser
def test_job_page_shows_the_clara_id_and_opens_by_it(platform, page):
    """Identity as Clara has it: the job page lists the id Clara's API spells (32 hex digits) and
    the dashboard finds the job by either spelling."""
    job_id = add_job(platform)
    clara_id = job_id.replace("-", "")
    page.goto(f"{platform.url}/ui/jobs/{clara_id}")
    page.locator("dl.facts").wait_for()
    facts = page.locator("dl.facts").inner_text()
    assert "Clara id" in facts and clara_id in facts and job_id in facts
    assert page.errors == []
