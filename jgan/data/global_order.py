"""One record order for any number of processes: the global batches of a run do not
depend on how many hosts read them.

grain's `DataLoader` with `ShardOptions(p, P)` reads sampler positions `p, p + P,
p + 2P, ...` on process p (and deals them to its W workers in turn), then batches
them. `GlobalBatchOrder` is a sampler that maps those positions so that process p's
k-th batch is rows `[p b, (p + 1) b)` of global batch k of the one-process order
(`b = B / P`): laid side by side in process order, as
`jax.make_array_from_process_local_data` assembles them, the P pieces are exactly the
one-process batch. A run therefore trains on the same batches on one host or on
several, and its input position is one number, the global batches consumed, which
restores on any process count.
"""
from __future__ import annotations

import dataclasses

import grain.python as gp


@dataclasses.dataclass(frozen=True)
class GlobalBatchOrder:
    """A grain sampler: `inner`'s record order, read in global batches of
    `global_batch_size` by `shard_count` processes of `worker_count` workers each,
    starting at global batch `start_batch`.

    Attributes:
      inner: the one-process order (an unsharded `gp.IndexSampler`).
      global_batch_size: B, examples per global batch.
      shard_count: P, processes; B must be a multiple of P.
      worker_count: W, grain workers per process (0: reading in the process).
      start_batch: the global batches already consumed (the input position).
    """
    inner: gp.IndexSampler
    global_batch_size: int
    shard_count: int = 1
    worker_count: int = 0
    start_batch: int = 0

    def __post_init__(self):
        if self.global_batch_size % self.shard_count:
            raise ValueError(f"global_batch_size={self.global_batch_size} does not split over "
                             f"{self.shard_count} processes.")

    def position(self, index: int) -> int:
        """The position in `inner`'s order of the record grain reads at `index`."""
        processes, workers = self.shard_count, max(self.worker_count, 1)
        local = self.global_batch_size // processes
        process, per_process = index % processes, index // processes
        # Worker w of a process reads its records w, w + W, ... and makes batches of
        # them; the loader takes the workers' batches in turn.
        worker, per_worker = per_process % workers, per_process // workers
        worker_batch, row = divmod(per_worker, local)
        batch = worker_batch * workers + worker
        return (self.start_batch + batch) * self.global_batch_size + process * local + row

    def __getitem__(self, index: int) -> gp.RecordMetadata:
        record = self.inner[self.position(index)]
        return gp.RecordMetadata(index=index, record_key=record.record_key, rng=record.rng)

    def __repr__(self) -> str:  # grain validates a restored iterator state against it
        return (f"GlobalBatchOrder({self.inner!r}, global_batch_size={self.global_batch_size}, "
                f"shard_count={self.shard_count}, worker_count={self.worker_count}, "
                f"start_batch={self.start_batch})")
