"""Dashboard and viewer figures, each next to a baseline measured in the same run.

    python bench/render_bench.py [--jobs 10] [--slices 120] [--size 512]

1. Live update latency: a job row committed to the store → the row in the browser's job list
   (SSE change event + re-fetch + DOM). Baseline: one plain GET /api/v1/render/jobs round trip.
2. DICOM → NIfTI conversion of a `--size`² × `--slices` CT series (DICOM-only jobs, first view).
   Baseline: reading the same files with pydicom (headers + pixels), no conversion or writing.
3. Viewer ready (NiiVue, WebGL2 on SwiftShader in headless Chromium) for that volume.
   Baseline: the job page (no WebGL) ready in the same browser.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from claractl.platform.render import dicom_volume  # noqa: E402
from claractl.platform.store.models import Job  # noqa: E402
from render.conftest import CHROMIUM, CHROMIUM_ARGS, _build_ui, free_port, serve  # noqa: E402
from render.support import add_job, make_platform, write_ct_series  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument("--slices", type=int, default=120)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    _build_ui()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        rp = make_platform(Path(tmp))
        port = free_port()
        server, thread = serve(rp.service, port)
        url = f"http://127.0.0.1:{port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url + "/ui/")
            page.wait_for_function("document.body.dataset.live === 'live'")

            # The page stamps when each row appears (Playwright's own polling backs off to
            # hundreds of ms, so waiting from Python would measure the poller, not the page).
            page.evaluate("""() => { window.__seen = {};
              new MutationObserver(() => { for (const tr of document.querySelectorAll('tr[data-job-id]'))
                window.__seen[tr.dataset.jobId] ??= Date.now() })
              .observe(document.getElementById('jobs-table'), {childList: true, subtree: true}) }""")
            latencies, gets = [], []
            for i in range(a.jobs):
                t0 = time.time()
                job_id = add_job(rp, name=f"bench-{i}", with_volume=False, logs=False)
                page.locator(f"tr[data-job-id='{job_id}']").wait_for(timeout=10000)
                latencies.append(page.evaluate(f"window.__seen['{job_id}']") / 1000 - t0)
                time.sleep(0.137 * (i % 3))          # commits at different phases of the SSE poll
                t0 = time.perf_counter()
                httpx.get(url + "/api/v1/render/jobs").raise_for_status()
                gets.append(time.perf_counter() - t0)
            print(f"live update, store commit → row in the page (median of {a.jobs}): {ms(statistics.median(latencies))}"
                  f"   max {ms(max(latencies))}")
            print(f"  baseline GET /api/v1/render/jobs round trip (median):       {ms(statistics.median(gets))}")

            # A DICOM-only job of a realistic CT size.
            job_id = add_job(rp, name="bench-ct", with_volume=False, logs=False)
            with rp.store.session() as s:
                payload = rp.config.payloads_dir / s.get(Job, job_id).payload_id
            rng = np.random.default_rng(0)
            volume = rng.integers(-1000, 1500, size=(a.size, a.size, a.slices), dtype=np.int16)
            series_dir = Path(tmp) / "series"
            files = write_ct_series(series_dir, volume, series_uid="7.7.7")
            t0 = time.perf_counter()
            for f in files:
                pydicom.dcmread(f).pixel_array
            read = time.perf_counter() - t0
            t0 = time.perf_counter()
            dicom_volume.convert_series(files, Path(tmp) / "out")
            convert = time.perf_counter() - t0
            mb = volume.nbytes / 1e6
            print(f"DICOM → NIfTI, {a.size}×{a.size}×{a.slices} ({mb:.0f} MB): {convert:6.2f} s")
            print(f"  baseline pydicom read of the same files:          {read:6.2f} s")

            # Viewer on that volume (served from the payload as the dicom-reader output would be).
            target = payload / "operators" / "dicom-reader"
            target.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / "out" / "7.7.7.nii.gz").rename(target / "7.7.7.nii.gz")
            t0 = time.perf_counter()
            page.goto(f"{url}/ui/jobs/{job_id}")
            page.locator("#operators-table").wait_for()
            job_page = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.goto(f"{url}/ui/jobs/{job_id}/viewer")
            page.wait_for_function("document.body.dataset.viewer === 'ready'", timeout=300000)
            viewer = time.perf_counter() - t0
            print(f"viewer ready (NiiVue, SwiftShader) for that volume: {viewer:6.2f} s")
            print(f"  baseline job page ready:                          {job_page:6.2f} s")
            browser.close()
        server.should_exit = True
        thread.join(timeout=5)


if __name__ == "__main__":
    main()
