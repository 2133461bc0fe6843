"""The dashboard's pages and the offline API docs are served by the API itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient


def test_root_redirects_to_the_dashboard(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui"


@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("/ui", 'id="jobs"'),
        ("/ui/jobs/abc123", 'data-job-id="abc123"'),
        ("/ui/benchmarks", 'id="benchmarks"'),
        ("/ui/benchmarks/b-1", 'data-benchmark-id="b-1"'),
        ("/ui/studies", 'id="studies"'),
        ("/ui/studies/s-1", 'data-study-id="s-1"'),
        ("/ui/results", 'id="results-form"'),
        ("/ui/submit", 'id="submit-form"'),
        ("/ui/login", 'id="login-form"'),
    ],
)
def test_each_page_renders_with_its_script_and_styles(
    client: TestClient, path: str, marker: str
) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert marker in r.text
    for asset in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', r.text):
        assert client.get(asset).status_code == 200, asset


def test_pages_escape_ids_from_the_url(client: TestClient) -> None:
    r = client.get("/ui/jobs/<script>x")
    assert r.status_code == 200 and "<script>x" not in r.text


def test_the_api_docs_load_only_local_assets(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", r.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "cdn" not in r.text.lower()
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get("/openapi.json").status_code == 200
    bundle = client.get("/ui/static/swagger-ui/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"] and len(bundle.content) > 100_000


def test_the_dashboard_is_not_part_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui") or p in ("/", "/docs")]
    assert "/v1/jobs/{job_id}/plots/{kind}" in paths
    assert "/v1/benchmarks/{benchmark_id}/plots/{kind}" in paths
