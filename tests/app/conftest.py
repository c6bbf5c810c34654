"""Fixtures of the in-process grid (tests/in_process.py): the three services' apps and their test clients."""

from __future__ import annotations

import pytest

from tests.in_process import InProcessGrid, in_process_grid


@pytest.fixture
def grid() -> InProcessGrid:
    return in_process_grid()


@pytest.fixture
def gateway(grid):
    return grid.gateway.test_client()


@pytest.fixture
def balancer(grid):
    return grid.balancer.test_client()


@pytest.fixture
def substation(grid):
    return grid.substations["substation1"].test_client()
