"""grid_common/long_lived.py: what survives a full collection is frozen, and everything is walked again every
`rescan_s`, so that a reference cycle among frozen objects is freed within that time."""

from __future__ import annotations

import gc
import weakref

import pytest

from grid_common.long_lived import FreezeAfterFullCollections, freeze_after_full_collections


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def clean_gc():
    gc.collect()
    gc.unfreeze()
    before = list(gc.callbacks)
    yield
    gc.callbacks[:] = before
    gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_and_young_collections_do_nothing(clean_gc):
    now = [0.0]
    freezer = FreezeAfterFullCollections(rescan_s=100, clock=lambda: now[0])
    gc.callbacks.append(freezer)
    kept = [Node() for _ in range(100)]
    gc.collect(0)
    assert gc.get_freeze_count() == 0 and freezer.frozen == 0, "a young collection freezes nothing"
    gc.collect()
    assert gc.get_freeze_count() >= len(kept) and freezer.frozen == 1


def test_a_cycle_among_frozen_objects_is_freed_after_the_rescan(clean_gc):
    now = [0.0]
    freezer = FreezeAfterFullCollections(rescan_s=100, clock=lambda: now[0])
    gc.callbacks.append(freezer)
    a, b = Node(), Node()
    a.other, b.other = b, a
    watch = weakref.ref(a)
    gc.collect()  # both survive, and are frozen
    assert gc.get_freeze_count() > 0
    del a, b  # a cycle: only the collector frees it
    gc.collect()
    assert watch() is not None, "frozen: not walked, so not freed yet"
    now[0] = 150.0
    gc.collect()  # due: everything unfrozen
    assert freezer.rescans == 1 and gc.get_freeze_count() == 0
    gc.collect()  # walks everything: the cycle goes
    assert watch() is None
    assert gc.get_freeze_count() > 0, "and what survived is frozen again"


def test_it_is_installed_once(clean_gc):
    first = freeze_after_full_collections()
    assert freeze_after_full_collections() is first
    assert sum(isinstance(callback, FreezeAfterFullCollections) for callback in gc.callbacks) == 1
