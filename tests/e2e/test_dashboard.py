"""The dashboard in a real browser (headless Debian Chromium via Playwright) on the embedded
stack with auth on: log in with a key, see the empty state, submit a job from the UI and
watch it finish live, then read a finished benchmark's comparison table against the API.

Screenshots of each page are kept in the folder printed at the start (UI_TEST_ARTIFACTS,
or `<tmp>/flatlab-ui-artifacts`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import Stack, chromium, embedded_stack, wait_finished

pytestmark = pytest.mark.slow

JOB = {
    "name": "ui-job",
    "model": {"name": "mlp", "hidden": [16]},
    "data": {"name": "digits", "batch_size": 128},
    "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}},
    # Long enough to be watched: a warm worker starts a job within ~0.1 s, and a
    # one-epoch job would end before the page opens its event stream.
    "training": {"epochs": 60, "seed": 0, "log_every_steps": 1},
    "measure": {
        "every_epochs": 20,
        "num_examples": 128,
        "sharpness": [{"name": "hessian_trace", "probes": 2}],
    },
}
BENCHMARK = {
    "name": "ui-bench",
    "base": {
        **JOB,
        "name": None,
        "training": {"epochs": 1, "seed": 0},
        "measure": {**JOB["measure"], "every_epochs": 1},
    },
    "axes": {
        "optimizer": [
            {"name": "sgd", "base": {"name": "sgd", "lr": 0.1}, "label": "SGD"},
            {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}, "label": "SAM"},
        ]
    },
    "seeds": [0, 1],
}


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(
        os.environ.get("UI_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "flatlab-ui-artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the browser tests: {folder}")
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with embedded_stack(tmp_path_factory.mktemp("ui-stack")) as running:
        yield running


@pytest.fixture
def page(stack: Stack) -> Iterator[Any]:
    with chromium() as browser_page:
        browser_page.set_default_timeout(120_000)  # plots render on a shared, busy CPU
        yield browser_page


def login(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.url}/ui")
    page.wait_for_url("**/ui/login**")  # the API answered 401: the page asks for a key
    page.fill("input[name=key]", stack.key)
    page.click("#login-form button:not([type=button])")
    page.wait_for_url(f"{stack.url}/ui")


def test_submit_a_job_from_the_ui_and_watch_it_finish_live(
    page: Any, stack: Stack, artifacts: Path
):
    login(page, stack)
    page.wait_for_selector("#jobs-empty:not([hidden])")  # an honest empty state
    page.screenshot(path=str(artifacts / "jobs-empty.png"), full_page=True)

    page.click("text=Submit a job")
    page.wait_for_url("**/ui/submit")
    page.fill("#spec", json.dumps(JOB))
    page.click("#submit-button")
    page.wait_for_url("**/ui/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#live:text('live')")
    # the page does not reload: the status badge changes from the event stream
    page.wait_for_selector("#job-status.s-succeeded", timeout=240_000)
    page.wait_for_selector("#live:text('finished')")
    page.wait_for_selector("[data-plot=curves] img")
    page.wait_for_selector("[data-plot=measures] img")
    # a measure the spec did not ask for says so instead of showing a broken image
    assert "loss_landscape_1d" in page.inner_text("[data-plot=landscape_1d]")
    page.screenshot(path=str(artifacts / "job-finished.png"), full_page=True)

    with stack.client() as api:
        job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["name"] == "ui-job"
    summary = page.inner_text("#job-summary")
    assert "final_test_acc" in summary

    page.goto(f"{stack.url}/ui")
    row = page.wait_for_selector(f"tr[data-job-id='{job_id}']")
    assert row.get_attribute("data-status") == "succeeded"


def test_a_finished_benchmark_shows_the_apis_numbers(page: Any, stack: Stack, artifacts: Path):
    with stack.client() as api:
        made = api.post("/v1/benchmarks", json=BENCHMARK).raise_for_status().json()
        wait_finished(api, f"/v1/benchmarks/{made['id']}")
        report = api.get(f"/v1/benchmarks/{made['id']}").json()
    login(page, stack)
    page.goto(f"{stack.url}/ui/benchmarks/{made['id']}")
    page.wait_for_selector("#updated:text('finished')")
    page.wait_for_selector("[data-plot=comparison] img")
    page.wait_for_selector("[data-plot=sharpness_gap] img")
    page.screenshot(path=str(artifacts / "benchmark.png"), full_page=True)

    comparison = report["comparison"]
    metric = comparison["metric"]
    rows = page.query_selector_all("#comparison tbody tr")
    assert sorted(r.get_attribute("data-label") for r in rows) == sorted(
        comparison["configurations"]
    )
    for row in rows:
        stats = comparison["configurations"][row.get_attribute("data-label")]["metrics"][metric]
        for cell in ("mean", "std", "ci_low", "ci_high"):
            shown = row.query_selector(f"[data-value-{cell.replace('_', '-')}]")
            exact = float(shown.get_attribute(f"data-value-{cell.replace('_', '-')}"))
            assert exact == stats[cell]  # the same number the API gave, not a recomputation
        text = row.query_selector(".mean").inner_text()
        assert float(text) == pytest.approx(stats["mean"], rel=5e-4)  # shown to 4 digits
        assert row.query_selector(".n").inner_text().startswith(f"{stats['n']} of")

    page.goto(f"{stack.url}/ui/benchmarks")
    page.wait_for_selector(f"a[href='/ui/benchmarks/{made['id']}'], .flash.info")
    page.screenshot(path=str(artifacts / "benchmarks.png"), full_page=True)
