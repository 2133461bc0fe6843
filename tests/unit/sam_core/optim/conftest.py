"""Fixtures of the optimizer tests."""

from __future__ import annotations

import pytest
import torch

from tests.unit.sam_core.optim.nets import BnNet, TinyNet


@pytest.fixture
def tiny() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def bn_net() -> BnNet:
    torch.manual_seed(0)
    return BnNet()
