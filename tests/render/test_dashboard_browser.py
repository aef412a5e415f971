"""The dashboard in real headless Chromium against the render server and built assets."""

from __future__ import annotations

import pytest

from claractl.platform.store.models import ExportTask, Job, JobState, JobStatus, Model, utcnow
from .support import REFERENCE_PDL, SERIES_UID, add_job, add_pipeline

pytestmark = pytest.mark.browser


def wait_live(page) -> None:
    page.wait_for_function("() => document.body.dataset.live === 'live'", timeout=5000)


def test_finished_job_appears_in_the_list_within_2s_without_reload(platform, page, artifacts):
    page.goto(platform.url + "/ui/")
    wait_live(page)
    page.evaluate("window.__sameDocument = true")

    job_id = add_job(platform, name="live-job", finished=True, source_ae="MODALITY_1")

    row = page.locator(f"tr[data-job-id='{job_id}']")
    row.wait_for(timeout=2000)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "ct-organ-seg" and "STOPPED" in cells[2] and "HEALTHY" in cells[3]
    assert cells[4] == "higher" and cells[5] == "MODALITY_1" and cells[7] == "12.0 s"
    page.screenshot(path=str(artifacts / "jobs-list.png"))

    # A state change of a listed job shows up the same way.
    with platform.store.session() as s:
        job = s.get(Job, job_id)
        job.status = JobStatus.FAULTED
    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-job-id='{job_id}'] td:nth-child(4)\").textContent === 'FAULTED'",
        timeout=2000,
    )


def test_job_list_filters(platform, page):
    running = add_job(platform, name="still-running", finished=False, source_ae="CT_A")
    done = add_job(platform, name="finished", finished=True, source_ae="CT_B")
    page.goto(platform.url + "/ui/")
    page.locator(f"tr[data-job-id='{done}']").wait_for()
    page.select_option("select[name=state]", "RUNNING")
    page.locator(f"tr[data-job-id='{done}']").wait_for(state="detached")
    assert page.locator(f"tr[data-job-id='{running}']").count() == 1
    page.select_option("select[name=state]", "")
    page.fill("input[name=source]", "ct_b")
    page.locator(f"tr[data-job-id='{running}']").wait_for(state="detached")
    assert page.locator(f"tr[data-job-id='{done}']").count() == 1
    assert "source=ct_b" in page.url


def test_job_page_has_one_timeline_bar_per_operator_and_logs_open(platform, page, artifacts):
    job_id = add_job(platform)
    page.goto(f"{platform.url}/ui/jobs/{job_id}")
    page.locator(".timeline .bar").first.wait_for()
    operators = [op["name"] for op in REFERENCE_PDL["operators"]]
    bars = page.locator(".timeline .bar")
    assert bars.count() == len(operators)
    assert [bars.nth(i).get_attribute("data-operator") for i in range(bars.count())] == operators
    # Bars follow the operators' start times: each starts right of the previous one.
    lefts = [bars.nth(i).bounding_box()["x"] for i in range(bars.count())]
    assert lefts == sorted(lefts) and lefts[0] < lefts[-1]
    # The DAG is drawn with one node per operator.
    assert page.locator("svg.dag .dag-node").count() == len(operators)

    for name in operators:
        page.click(f"button.log-button[data-operator='{name}']")
        page.wait_for_function(
            f"() => document.getElementById('log').textContent.includes('{name}: done')", timeout=3000
        )
    files = page.locator("#payload-files li a").all_inner_texts()
    assert f"operators/dicom-reader/{SERIES_UID}.nii.gz" in files
    page.screenshot(path=str(artifacts / "job-page.png"), full_page=True)
    assert page.errors == []


def test_export_tasks_show_per_file_status_live(platform, page):
    job_id = add_job(platform)
    page.goto(f"{platform.url}/ui/jobs/{job_id}")
    wait_live(page)
    with platform.store.session() as s:
        s.add(ExportTask(job_id=job_id, agent="renderserver", files=[
            f"operators/dicom-reader/{SERIES_UID}.nii.gz", "operators/ai-inference/missing.nii.gz"]))
    page.locator("#exports-table").wait_for(timeout=2000)
    platform.service.agent.run_once()
    page.wait_for_function("() => document.querySelector('#exports-table').textContent.includes('indexed as volume')",
                           timeout=2000)
    text = page.locator("#exports-table").inner_text()
    assert "missing" in text and "renderserver" in text


def test_job_without_volume_shows_a_clear_message(platform, page, artifacts):
    job_id = add_job(platform, with_volume=False)
    page.goto(f"{platform.url}/ui/jobs/{job_id}/viewer")
    message = page.locator("#viewer-message")
    message.wait_for(timeout=5000)
    assert "no image volume" in message.inner_text()
    assert page.locator("#viewer-canvas").count() == 0
    page.screenshot(path=str(artifacts / "viewer-no-volume.png"))


def test_unknown_job_gives_a_404_page(platform, page, artifacts):
    response = page.goto(f"{platform.url}/ui/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status == 404
    page.locator("[data-page='not-found']").wait_for()
    assert "no job with id 00000000" in page.inner_text("main")
    response = page.goto(f"{platform.url}/ui/jobs/00000000-0000-0000-0000-000000000000/viewer")
    assert response.status == 404
    page.locator("[data-page='not-found']").wait_for()
    response = page.goto(f"{platform.url}/ui/no-such-page")
    assert response.status == 404
    page.locator("[data-page='not-found']").wait_for()
    page.screenshot(path=str(artifacts / "not-found.png"))


def test_pipelines_and_platform_pages_update_live(platform, page):
    add_pipeline(platform.store)
    page.goto(platform.url + "/ui/pipelines")
    card = page.locator("[data-pipeline='ct-organ-seg']")
    card.wait_for()
    assert card.locator(".dag-node").count() == len(REFERENCE_PDL["operators"])
    assert card.locator(".dag-edge").count() == 5

    page.click("a[data-nav='platform']")
    page.locator("[data-page='platform']").wait_for()
    wait_live(page)
    with platform.store.session() as s:
        s.add(Model(name="ct-organs", digest="sha256:" + "ab" * 32, config={"platform": "onnxruntime_onnx"},
                    versions=["1"], state="UNLOADED"))
    page.locator("table#models").wait_for(timeout=2000)
    assert "unloaded" in page.inner_text("#models")
    with platform.store.session() as s:
        model = s.get(Model, "ct-organs")
        model.state, model.updated_at = "LOADED", utcnow()
    page.wait_for_function("() => document.querySelector('#models').textContent.includes('loaded') && "
                           "!document.querySelector('#models').textContent.includes('unloaded')", timeout=2000)
    assert "sha256:abab" in page.inner_text("#models")


def test_running_job_page_follows_operator_progress(platform, page):
    job_id = add_job(platform, finished=False)
    with platform.store.session() as s:
        job = s.get(Job, job_id)
        for op in job.operators[2:]:
            op.state, op.started_at, op.stopped_at = JobState.PENDING, None, None
    page.goto(f"{platform.url}/ui/jobs/{job_id}")
    page.locator(".timeline .bar").first.wait_for()
    wait_live(page)
    assert page.locator(".timeline .bar").count() == 2
    with platform.store.session() as s:
        job = s.get(Job, job_id)
        job.operators[2].state, job.operators[2].started_at = JobState.RUNNING, utcnow()
    page.wait_for_function("() => document.querySelectorAll('.timeline .bar').length === 3", timeout=2000)


def test_token_once_in_the_url_then_the_whole_ui_works_from_the_cookie(exposed_platform, page):
    job_id = add_job(exposed_platform)
    response = page.goto(f"{exposed_platform.url}/ui/jobs/{job_id}")
    assert response.status == 401
    assert page.locator("input[name=token]").count() == 1       # the sign-in form
    page.fill("input[name=token]", "browser-token")
    page.click("form button")
    page.locator(".timeline .bar").first.wait_for()
    assert "token" not in page.url                              # the token left the address bar
    wait_live(page)                                             # SSE authorised by the cookie
    other = add_job(exposed_platform, name="second")
    page.goto(f"{exposed_platform.url}/ui/")
    page.locator(f"tr[data-job-id='{other}']").wait_for(timeout=2000)
    cookies = page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [("clara_token", True, "Strict")]


def test_audit_page_lists_the_trail_live_and_filters_failures(platform, page, artifacts):
    from claractl.platform.audit import trail
    with platform.store.session() as s:
        trail.record(s, "study", "received", actor="MODALITY1", source="10.1.2.3:4000", target="ORGANSEG",
                     study_uid="1.2.3.4", patient_id="PAT-1", job_id="0f0f0f0f-0000-0000-0000-000000000000",
                     detail={"instances": 120})
    page.goto(platform.url + "/ui/audit")
    wait_live(page)
    row = page.locator("#audit-table tr[data-kind=study]")
    row.wait_for(timeout=3000)
    cells = row.locator("td").all_inner_texts()
    assert cells[1:7] == ["study", "received", "success", "MODALITY1", "10.1.2.3:4000", "ORGANSEG"]
    assert "study 1.2.3.4 (120 instances)" in cells[7] and "patient PAT-1" in cells[7]

    # A refusal recorded now appears without a reload; "failures only" keeps just it.
    with platform.store.session() as s:
        trail.record(s, "association", "rejected", outcome=4, actor="INTRUDER", source="10.6.6.6:1",
                     target="ORGANSEG", detail={"reason": "calling AE not recognised"})
    page.locator("#audit-table tr[data-kind=association]").wait_for(timeout=3000)
    page.check("input[name=failures]")
    page.locator("#audit-table tr[data-kind=study]").wait_for(state="detached")
    assert page.locator("#audit-table tbody tr").count() == 1 and "failures=true" in page.url
    assert "reason: calling AE not recognised" in page.locator("#audit-table tbody tr").inner_text()
    page.screenshot(path=str(artifacts / "audit-page.png"), full_page=True)
    assert page.errors == []
