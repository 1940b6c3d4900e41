"""End to end in real headless Chromium: a worker process runs jobs, the overview shows them
finish, a dead letter is requeued from the page and succeeds; the history chart and the job
lists show what ran before the dashboard started, and again after it restarts.

The last test's screenshot goes to the test's temporary directory: tests never write into
the checkout. The README's picture is made on purpose, with
``pytest tests/test_dashboard_browser.py --dashboard-screenshot docs/dashboard.png``.
"""

from __future__ import annotations

import contextlib
import functools
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import anyio.from_thread
import pytest

import naq_sync
from naq.dashboard import create_app, serve

from .conftest import start_worker_process
from .dashboardtools import bound_socket

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow


@pytest.fixture
def dashboard_url(nats_url: str) -> Iterator[str]:
    with dashboard_in_a_thread(nats_url) as url:
        yield url


@contextlib.contextmanager
def dashboard_in_a_thread(nats_url: str) -> Iterator[str]:
    """The dashboard (connecting by URL, like ``naq dashboard``) on a loop in a thread."""
    fd, port = bound_socket()
    with anyio.from_thread.start_blocking_portal() as portal:
        stop = portal.call(anyio.Event)
        served = portal.start_task_soon(
            functools.partial(serve, create_app(nats_url), f"fd://{fd}", shutdown_trigger=stop.wait)
        )
        yield f"http://127.0.0.1:{port}"
        portal.call(stop.set)
        served.result(timeout=30)


@pytest.fixture
def browser_page():
    """A page in Debian's chromium, driven by Playwright (which downloads no browser)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); "
            ".ci/run does it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def test_overview_shows_jobs_finish_and_requeue_from_the_page(
    nats_url, dashboard_url, browser_page, tmp_path
):
    from playwright.sync_api import expect

    page = browser_page
    expect.set_options(timeout=30_000)
    queue = f"dash{uuid.uuid4().hex[:8]}"
    worker = start_worker_process(
        nats_url, [queue], "--serializer", "json", "--heartbeat-interval", "0.5"
    )
    try:
        page.goto(dashboard_url + "/")  # answered once the dashboard tails job events
        expect(page.locator("#status")).to_contain_text("Updated")
        # Playwright's sync API runs an event loop in this thread, where naq_sync (rightly)
        # refuses to block: its calls go through a plain thread here.
        blocking = ThreadPoolExecutor(1)

        def call(fn, *args, **kwargs):
            return blocking.submit(fn, *args, **kwargs).result()

        client = call(lambda: naq_sync.Client(nats_url, serializer="json").__enter__())
        try:
            done = [
                call(client.enqueue, "tests.jobs:add", i, i * 10, queue=queue) for i in range(5)
            ]
            flaky = call(
                client.enqueue, "tests.jobs:fail_until", str(tmp_path / "calls"), 1, queue=queue
            )
            for job in done:
                row = page.locator(f'#recent tr[data-job="{job.id}"]')
                expect(row).to_have_attribute("data-status", "finished")
            expect(page.locator(f'#recent tr[data-job="{flaky.id}"]')).to_have_attribute(
                "data-status", "failed"
            )
            expect(page.locator(f'tr[data-queue="{queue}"]')).to_be_visible()

            letter = page.locator(f'#dead-letters tr[data-dead-letter="{flaky.id}"]')
            expect(letter).to_contain_text("RuntimeError: failure 1")
            page.click('nav a[href="/dead-letters"]')  # the dead letters' own page
            letter = page.locator(f'tr[data-dead-letter="{flaky.id}"]')
            expect(letter).to_contain_text("tests.jobs:fail_until")  # its function
            letter.locator('button[data-action="requeue"]').click()
            expect(letter).to_have_count(0)
            page.goto(dashboard_url + "/")
            expect(page.locator(f'#recent tr[data-job="{flaky.id}"]')).to_have_attribute(
                "data-status", "finished"
            )
            assert call(lambda: client.fetch_job(flaky.id).result(timeout=20)) == 2

        finally:
            call(client.__exit__, None, None, None)
            blocking.shutdown()
        page.goto(f"{dashboard_url}/jobs/{flaky.id}")
        expect(page.locator("#result")).to_have_text("2")
        expect(page.locator("#content")).to_contain_text("tests.jobs:fail_until")

        page.fill('input[name="q"]', done[0].id)
        page.click("form.search button")
        expect(page.locator("#content")).to_contain_text("[0,0]")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_chart_and_job_lists_show_what_ran_before_and_after_a_restart(
    nats_url, browser_page, tmp_path, request
):
    from playwright.sync_api import expect

    screenshot = Path(request.config.getoption("--dashboard-screenshot") or tmp_path / "shot.png")
    page = browser_page
    expect.set_options(timeout=30_000)
    queue = f"hist{uuid.uuid4().hex[:8]}"

    def run_jobs() -> tuple[list[naq_sync.Job[int]], naq_sync.Job[None]]:
        with naq_sync.Client(nats_url, serializer="json") as client:
            done = [client.enqueue("tests.jobs:add", i, i, queue=queue) for i in range(4)]
            failed = client.enqueue("tests.jobs:fail", "kaput", queue=queue)
            assert [job.result(timeout=20) for job in done] == [0, 2, 4, 6]
            with pytest.raises(naq_sync.JobFailed):
                failed.result(timeout=20)
        return done, failed

    worker = start_worker_process(nats_url, [queue], "--serializer", "json")
    try:
        # Playwright's event loop runs in this thread: naq_sync is called from another.
        with ThreadPoolExecutor(1) as blocking:
            done, failed = blocking.submit(run_jobs).result()
    finally:
        worker.terminate()  # a clean stop writes the worker's last history sample
        assert worker.wait(timeout=30) == 0
    for _start in ("first", "restart"):
        with dashboard_in_a_thread(nats_url) as url:
            page.goto(f"{url}/queues/{queue}")
            chart = page.locator("#chart")
            expect(chart).to_have_attribute("data-finished", "4")
            expect(chart).to_have_attribute("data-failed", "1")
            expect(page.locator("#chart rect.failed")).not_to_have_count(0)
            page.click('#jobs a[data-state="finished"]')
            expect(page.locator('#jobs a[data-state="finished"]')).to_have_class("tab active")
            for job in done:
                expect(page.locator(f'#jobs tr[data-job="{job.id}"]')).to_have_attribute(
                    "data-status", "finished"
                )
            expect(page.locator(f'#jobs tr[data-job="{failed.id}"]')).to_have_count(0)

            page.fill('input[name="q"]', "jobs:fail")  # search by function
            page.click("form.search button")
            expect(page.locator(f'#jobs tr[data-job="{failed.id}"]')).to_have_attribute(
                "data-status", "failed"
            )

    with dashboard_in_a_thread(nats_url) as url:
        page.goto(url + "/")
        expect(page.locator("#chart")).to_have_attribute("data-finished", re.compile(r"[1-9]"))
        expect(page.locator(f'tr[data-queue="{queue}"]')).to_be_visible()
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 0
