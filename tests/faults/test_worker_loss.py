"""A worker killed outright (SIGKILL: no checkpoint, no goodbye) loses no job and no result."""

from __future__ import annotations

from collections import Counter

from tests.faults.conftest import LONG, holder, kill_group, points, results, submit, wait_job


def test_job_of_a_killed_worker_resumes_elsewhere_and_ends_as_if_undisturbed(
    client, db, start_worker, reference
):
    doomed = start_worker("worker-doomed")
    job_id = submit(client, LONG)
    caught = wait_job(db, job_id, lambda j: j.checkpoint_path is not None and j.step >= 40)
    assert caught.status == "running" and holder(caught, [doomed]) is doomed

    kill_group(doomed)  # mid-epoch, some points still in its buffer
    rescuer = start_worker("worker-rescuer")
    done = wait_job(db, job_id)

    assert done.status == "succeeded", done.error
    assert (done.attempts, done.infra_failures) == (2, 1)
    assert f"job {job_id}: resuming from step" in rescuer.log()
    assert results(done.summary) == reference.summary  # bit for bit on CPU
    stored = points(db, job_id)
    keys = Counter((name, step) for name, step, _ in stored)
    assert max(keys.values()) == 1  # no point written twice
    assert set(keys) == set(reference.points)  # no step missing, none extra
    assert {(n, s): v for n, s, v in stored} == reference.points  # every value equal


def test_job_fails_with_exhausted_retries_when_every_attempt_loses_its_worker(
    client, db, start_worker
):
    workers = [start_worker("worker-lost-1")]
    job_id = submit(client, LONG)
    for attempt in (1, 2, 3):  # max_attempts is 3
        workers.append(start_worker(f"worker-lost-{attempt + 1}"))  # ready to take over
        running = wait_job(db, job_id, lambda j, a=attempt: j.attempts == a)
        assert running.status == "running"
        lost = holder(running, workers)
        kill_group(lost)
        workers.remove(lost)

    failed = wait_job(db, job_id)
    assert (failed.status, failed.failure_reason) == ("failed", "exhausted_retries")
    assert (failed.attempts, failed.infra_failures) == (3, 3)
    assert "stopped answering" in failed.error and "3 of its attempts" in failed.error
    public = client.get(f"/v1/jobs/{job_id}").json()
    assert (public["status"], public["failure_reason"]) == ("failed", "exhausted_retries")
    assert workers  # a worker is up, and it never ran the job again
    assert all(f"job {job_id}: attempt" not in w.log() for w in workers)
