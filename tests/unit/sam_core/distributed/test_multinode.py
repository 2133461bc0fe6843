"""Two launchers on one machine as two "nodes" of one job, through the c10d rendezvous."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from sam_core.training.distributed import free_port
from tests.unit.sam_core.distributed import ranks
from tests.unit.sam_core.distributed.test_semantics import BATCH, RHO, STEPS, TOL, _close

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_two_nodes_meet_at_one_endpoint_and_train_global_sam_as_one_process() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        nodes = [pool.submit(ranks.one_node, endpoint, "two-nodes", STEPS, BATCH) for _ in range(2)]
        results = [node.result(timeout=600) for node in nodes]
    reference = ranks.single_process("sam", RHO, STEPS, BATCH)
    seen = set()
    for node in results:
        for rank, result in node["results"].items():
            seen.add(rank)
            _close(result["sam"]["weights"], reference["weights"], min(TOL, 1e-6))
    assert seen == {0, 1}  # each launcher reports its own ranks' global numbers
