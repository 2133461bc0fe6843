"""256 readers at once: every one gets its job, and the health probes answer meanwhile.

Against the API under uvicorn on PostgreSQL (auth on). A read route that held
its pooled connection while waiting for a thread used to lock up past ~55
requests in flight: every request then waited out the pool timeout and got a
503, and `/healthz` starved with them. No timing is asserted beyond "answers
at all within a generous timeout".
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.integration.specs import TINY

READERS = 256
ROUNDS = 3  # requests a reader sends one after another, so the burst lasts
PROBE_TIMEOUT = 10.0  # seconds: generous; a starved probe never answers


async def _burst(api_url: str, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    # A connection a request: a kept-alive one that uvicorn closes as idle (after 5 s)
    # just as a request goes out on it is a client-side race, not what this tests.
    limits = httpx.Limits(max_connections=READERS, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=api_url, headers=headers, limits=limits, timeout=60) as http,
        httpx.AsyncClient(base_url=api_url, timeout=PROBE_TIMEOUT) as probe_http,
    ):
        statuses: list[int | str] = []
        probes: list[tuple[str, int | str]] = []

        async def reader() -> None:
            for _ in range(ROUNDS):
                try:
                    r = await http.get(f"/v1/jobs/{job_id}")
                    ok = r.status_code != 200 or r.json()["id"] == job_id
                    statuses.append(r.status_code if ok else "wrong job")
                except httpx.HTTPError as exc:
                    statuses.append(type(exc).__name__)

        async def prober(done: asyncio.Event) -> None:
            while not done.is_set():
                for path in ("/healthz", "/readyz"):
                    try:
                        probes.append((path, (await probe_http.get(path)).status_code))
                    except httpx.HTTPError as exc:
                        probes.append((path, type(exc).__name__))
                await asyncio.sleep(0.05)

        done = asyncio.Event()
        probing = asyncio.create_task(prober(done))
        await asyncio.gather(*(reader() for _ in range(READERS)))
        done.set()
        await probing
    return {"statuses": statuses, "probes": probes}


def test_256_concurrent_readers_all_get_answers_and_health_stays_responsive(
    api_url: str, api_key: str
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    created = httpx.post(f"{api_url}/v1/jobs", json=TINY, headers=headers, timeout=30)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]

    seen = asyncio.run(_burst(api_url, headers, job_id))

    statuses = seen["statuses"]
    assert len(statuses) == READERS * ROUNDS
    failed = [str(s) for s in statuses if s != 200]
    assert not failed, f"{len(failed)} of {len(statuses)} reads failed: {sorted(set(failed))}"
    probes = seen["probes"]
    assert {path for path, _ in probes} == {"/healthz", "/readyz"}  # probed during the burst
    assert all(status == 200 for _, status in probes), [p for p in probes if p[1] != 200][:5]
