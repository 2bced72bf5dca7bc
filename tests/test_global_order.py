"""GlobalBatchOrder: the global batches of a grain pipeline are the same for any number
of processes and workers, and a loader made at a position starts there."""
from __future__ import annotations

import json

import grain.python as gp
import numpy as np
import pytest

from jgan.data.global_order import GlobalBatchOrder
from jgan.data.images import make_image_loader
from jgan.train.input import batches_consumed


class NumberedSource:
    """Record i is a 2x2 image of i % 256 labelled i (module level: workers import it)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": np.full((2, 2, 1), i % 256, np.uint8), "label": i}

    def __repr__(self):
        return f"NumberedSource({self.n})"


class BatchReadSource(NumberedSource):
    def __getitems__(self, indices):
        return [self[i] for i in indices]


def _global_batches(source, processes, workers=0, start=0, count=6, batch=8):
    """Each global batch: the processes' pieces side by side, in process order."""
    iterators = [iter(make_image_loader(
        source, global_batch_size=batch, resolution=2, channels=1, seed=3, shard_index=p,
        shard_count=processes, worker_count=workers, start_batch=start))
        for p in range(processes)]
    return [np.concatenate([next(it)["label"] for it in iterators]) for _ in range(count)]


def _one_process_order(n, seed=3):
    sampler = gp.IndexSampler(num_records=n, shard_options=gp.NoSharding(), shuffle=True,
                              num_epochs=None, seed=seed)
    return np.array([sampler[i].record_key for i in range(6 * 8)]).reshape(6, 8)


@pytest.mark.parametrize("source_type", [NumberedSource, BatchReadSource])
@pytest.mark.parametrize("processes", [1, 2, 4])
def test_global_batches_do_not_depend_on_the_process_count(source_type, processes):
    # 37 records: batches straddle the epoch boundary (reshuffled) after 4 batches.
    expected = _one_process_order(37)
    np.testing.assert_array_equal(_global_batches(source_type(37), processes), expected)


def test_global_batches_do_not_depend_on_the_worker_count():
    expected = _one_process_order(37)
    np.testing.assert_array_equal(_global_batches(BatchReadSource(37), 2, workers=2), expected)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_loader_made_at_a_position_starts_there(processes):
    expected = _one_process_order(37)
    np.testing.assert_array_equal(
        _global_batches(NumberedSource(37), processes, start=2, count=4), expected[2:])


def test_positions_are_a_bijection_onto_the_global_order():
    order = GlobalBatchOrder(gp.IndexSampler(num_records=10**6, shard_options=gp.NoSharding(),
                                             shuffle=False, seed=0),
                             global_batch_size=12, shard_count=3, worker_count=2)
    positions = sorted(order.position(i) for i in range(12 * 10))
    assert positions == list(range(12 * 10))


def test_a_batch_size_that_does_not_split_over_the_processes_is_refused():
    with pytest.raises(ValueError, match="global_batch_size=10 does not split over 4"):
        GlobalBatchOrder(None, global_batch_size=10, shard_count=4)


@pytest.mark.parametrize("workers", [0, 2])
def test_an_old_grain_position_reads_as_batches_consumed(workers):
    """Checkpoints written before positions were counted in batches hold grain's
    iterator state; one-process runs read it as the batches they had consumed."""
    batch, consumed = 8, 5
    if workers == 0:
        last = {"0": consumed * batch - 1}
    else:  # worker w read records w, w + 2, ...; batches 0, 2, 4 from worker 0
        last = {"0": 2 * (3 * batch - 1), "1": 2 * (2 * batch - 1) + 1}
    state = json.dumps({"version": 2, "last_seen_indices": last, "last_worker_index": 0,
                        "worker_count": workers})
    assert batches_consumed(state, batch) == consumed
