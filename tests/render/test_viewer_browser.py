"""The 3D viewer in real headless Chromium (WebGL2 on SwiftShader): it renders the CT, the
segmentation overlay changes exactly the segmented pixels, segment toggles and CT presets work.
The tests share one loaded viewer (its first frames cost seconds on a CPU rasteriser) and each
sets the controls it depends on."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from .support import add_job

pytestmark = pytest.mark.browser


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def red(px: np.ndarray) -> np.ndarray:
    """Pixels dominated by red (the liver's colour), not the cyan crosshair or grey CT."""
    return (px[..., 0] > px[..., 1] + 30) & (px[..., 0] > px[..., 2] + 30)


def green(px: np.ndarray) -> np.ndarray:
    """Pixels dominated by green (the spleen's colour)."""
    return (px[..., 1] > px[..., 0] + 30) & (px[..., 1] > px[..., 2] + 30)


@pytest.fixture(scope="module")
def viewer(module_platform, module_page):
    job_id = add_job(module_platform)
    module_page.goto(f"{module_platform.url}/ui/jobs/{job_id}/viewer")
    module_page.wait_for_function("() => document.body.dataset.viewer === 'ready'", timeout=60000)
    return module_page


def shot(page) -> bytes:
    return page.locator("#viewer-canvas").screenshot()


def act(page, do) -> None:
    """Run a UI action and wait until the viewer has drawn its result."""
    before = page.evaluate("document.body.dataset.drawn || ''")
    do()
    page.wait_for_function(f"() => (document.body.dataset.drawn || '') !== {before!r}")


def set_checked(page, selector: str, checked: bool) -> None:
    if page.is_checked(selector) != checked:
        act(page, lambda: page.click(selector))


def test_viewer_renders_and_overlay_changes_the_segmented_pixels(viewer, artifacts):
    set_checked(viewer, "#overlay-toggle", True)
    set_checked(viewer, "input[data-segment='2']", True)
    on_png = shot(viewer)
    (artifacts / "viewer-overlay-on.png").write_bytes(on_png)
    on = rgb(on_png)
    # Not blank: the CT shows many grey levels, not one background colour.
    assert len(np.unique(on.reshape(-1, 3), axis=0)) > 50
    assert on.std() > 20

    set_checked(viewer, "#overlay-toggle", False)
    off_png = shot(viewer)
    (artifacts / "viewer-overlay-off.png").write_bytes(off_png)
    off = rgb(off_png)
    changed = np.abs(on - off).sum(axis=2) > 30
    # The overlay changes some pixels, not the whole view (only where the segmentation is).
    assert 0.002 < changed.mean() < 0.35, changed.mean()
    # Where it changed, the overlay-on image carries a segment colour and the overlay-off one is grey CT.
    on_px, off_px = on[changed], off[changed]
    assert np.median(on_px.max(axis=1) - on_px.min(axis=1)) > 40
    assert np.median(off_px.max(axis=1) - off_px.min(axis=1)) < 10
    # Both segments are there: liver red (230,25,75), spleen green (60,180,75).
    reddish, greenish = red(on_px).sum(), green(on_px).sum()
    assert reddish > 50 and greenish > 50

    # Overlay back on, then hide only the spleen: the green goes, the red stays.
    set_checked(viewer, "#overlay-toggle", True)
    set_checked(viewer, "input[data-segment='2']", False)
    hidden_png = shot(viewer)
    (artifacts / "viewer-spleen-hidden.png").write_bytes(hidden_png)
    no_spleen = rgb(hidden_png)[changed]
    assert green(no_spleen).sum() < greenish * 0.05
    assert red(no_spleen).sum() > reddish * 0.9
    assert viewer.errors == []


def test_cpu_rendering_is_detected_and_said(viewer):
    # These machines have no GPU: WebGL2 runs on SwiftShader, so the viewer asks for volumes of at
    # most 192 voxels per axis (the 64×64×48 phantom is already smaller) and tells the user.
    assert viewer.inner_text("#viewer-status") == "64×64×48 voxels · payload · no GPU: at most 192 voxels per axis"


def test_segment_list_names_and_colours(viewer):
    labels = viewer.locator("#segments li").all_inner_texts()
    assert [t.strip() for t in labels] == ["liver", "spleen"]


def test_window_level_preset_changes_the_image(viewer):
    set_checked(viewer, "#overlay-toggle", False)        # compare CT only
    act(viewer, lambda: viewer.click("button[data-preset='Soft tissue']"))
    soft = rgb(shot(viewer))
    act(viewer, lambda: viewer.click("button[data-preset='Bone']"))
    assert viewer.input_value("#window-width") == "1800" and viewer.input_value("#window-level") == "400"
    bone = rgb(shot(viewer))
    # Soft tissue (40 HU) is mid grey in the soft-tissue window and dark in the bone window.
    assert bone.mean() < soft.mean() - 5


def test_segment_colour_can_be_changed(viewer, artifacts):
    set_checked(viewer, "#overlay-toggle", True)
    set_checked(viewer, "input[data-segment='2']", True)
    before = rgb(shot(viewer))
    spleen = green(before)
    assert spleen.sum() > 50
    act(viewer, lambda: viewer.locator("input[data-segment-color='2']").fill("#0000ff"))
    after_png = shot(viewer)
    (artifacts / "viewer-spleen-blue.png").write_bytes(after_png)
    px = rgb(after_png)[spleen]
    blue = (px[:, 2] > px[:, 0] + 30) & (px[:, 2] > px[:, 1] + 30)
    assert blue.mean() > 0.8 and green(px).mean() < 0.05


def test_right_drag_window_levelling_updates_the_fields(viewer):
    act(viewer, lambda: viewer.click("button[data-preset='Soft tissue']"))
    box = viewer.locator("#viewer-canvas").bounding_box()
    # Drag a box over the bottom-left plane (the axial slice): NiiVue sets W/L from the voxels inside.
    x, y = box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.6
    viewer.mouse.move(x, y)
    viewer.mouse.down(button="right")
    viewer.mouse.move(x + 60, y + 60, steps=5)
    viewer.mouse.up(button="right")
    viewer.wait_for_function("() => document.getElementById('window-width').value !== '400'", timeout=5000)
    assert viewer.input_value("#window-width") != "400"
