"""The Ray executor: each point a Ray task, spread over a cluster, results streamed back.

Each task asks for a whole device (num_gpus=1 on CUDA; on CPU, `run.cpus_per_point` CPUs or a
whole node's), so two benchmarks never share one. Inside the task the point runs exactly as
the local executor runs it (`run_isolated`: its own process, timeout, memory cap, failure
classification), so a crash, OOM or hang is a status here too. A task that dies itself (its
node lost, its worker killed by Ray's memory monitor) becomes a row with the status that says
so. Outcomes reach the driver as tasks finish, and the runner makes each durable at once, so
the store's durability and resume guarantees hold unchanged.
"""
from __future__ import annotations

import functools
import logging
import os
import time

from harness.errors import UserError
from harness.executors.base import Executor, Outcome
from harness.executors.isolated import preload, run_isolated
from harness.failure import classify, describe
from harness.points import Point
from harness.suite import Measure, RunSettings

# The task enforces the point's timeout itself; the driver only steps in when a task has not
# answered long after that (stuck scheduling, a hung node), counting from submission.
BACKSTOP_FACTOR = 2.0
BACKSTOP_GRACE_S = 300.0
POLL_S = 5.0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray, an optional extra: pip install 'lalm-bench[ray]'") from None
    return ray


def run_on_node(point: Point, measure: Measure, run: RunSettings, cpus: int) -> Outcome:
    """The Ray task body: run the point isolated on this node and say where it ran."""
    import ray

    preload(run.workload)
    env = {}
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # the GPU Ray assigned to this task
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    outcome = run_isolated(point, measure, run.workload, run.timeout_s, run.memory_limit_mb,
                           threads=run.threads or cpus, env=env)
    node_id = ray.get_runtime_context().get_node_id()
    outcome.context["node"] = f"{ray.util.get_node_ip_address()}/{node_id[:8]}"
    return outcome


def classify_ray_error(err: Exception) -> tuple[str, str]:
    """A Ray failure of the task itself -> (status, message)."""
    from ray import exceptions as rx

    first_line = (str(err).strip().splitlines() or [""])[0][:500]
    if isinstance(err, rx.OutOfMemoryError):
        return "oom", f"Ray killed the task's worker for memory: {first_line}"
    if isinstance(err, rx.GetTimeoutError):
        return "timeout", f"no result from the Ray task: {first_line}"
    if isinstance(err, rx.RayTaskError):
        cause = err.cause if isinstance(err.cause, BaseException) else None
        if cause is not None:
            return classify(cause), f"the Ray task raised {describe(cause, where=True)}"
        return "error", f"the Ray task raised: {first_line}"
    return "crash", f"the Ray task died ({type(err).__name__}): {first_line}"


class RayExecutor(Executor):
    where = "the Ray cluster"

    def __init__(self, run: RunSettings, measure: Measure):
        self._ray = ray = _import_ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                # Ray's own progress chatter would break the one-line errors and the progress bar.
                ray.init(address=run.address or None, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = f"--address {run.address}" if run.address else "a local Ray cluster"
                raise UserError(f"{where}: cannot start or reach Ray: {(str(err).splitlines() or [''])[0]}") from None
        self._run = run
        self._measure = measure
        self._device = run.device
        self._pending: dict[object, tuple[Point, float]] = {}
        self._task = ray.remote(run_on_node)

    def _alive_nodes(self) -> list[dict]:
        return [n["Resources"] for n in self._ray.nodes() if n.get("Alive")]

    def cuda_available(self) -> bool:
        return self._ray.cluster_resources().get("GPU", 0) >= 1

    def resolve_device(self, requested: str) -> str:
        self._device = super().resolve_device(requested)
        return self._device

    def _cpus_per_point(self) -> int:
        if self._run.cpus_per_point:
            return self._run.cpus_per_point
        if self._device == "cuda":
            return 1
        # A whole node: the smallest node's CPUs, so every node can take a point.
        return max(1, min(int(r.get("CPU", 1)) for r in self._alive_nodes()))

    @functools.cached_property
    def slots(self) -> int:
        """Points the cluster can run at once without two sharing a device (as sized at the start)."""
        if self._device == "cuda":
            return max(1, int(self._ray.cluster_resources().get("GPU", 0)))
        per = self._cpus_per_point()
        return max(1, sum(int(r.get("CPU", 0)) // per for r in self._alive_nodes()))

    def submit(self, point: Point) -> None:
        cpus = self._cpus_per_point()
        options = {"num_cpus": cpus, "num_gpus": 1 if self._device == "cuda" else 0, "max_retries": 0}
        ref = self._task.options(**options).remote(point, self._measure, self._run, cpus)
        deadline = time.monotonic() + BACKSTOP_FACTOR * self._run.timeout_s + BACKSTOP_GRACE_S
        self._pending[ref] = (point, deadline)

    def next_outcome(self) -> Outcome:
        ray = self._ray
        while True:
            ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=POLL_S)
            if ready:
                point, _ = self._pending.pop(ready[0])
                try:
                    return ray.get(ready[0])
                except ray.exceptions.RayError as err:
                    status, message = classify_ray_error(err)
                    return Outcome(point, status, error=message)
            now = time.monotonic()
            overdue = [ref for ref, (_, deadline) in self._pending.items() if now > deadline]
            if overdue:
                point, _ = self._pending.pop(overdue[0])
                ray.cancel(overdue[0], force=True)
                return Outcome(point, "timeout", error="no answer from its Ray task long past the point's timeout "
                                                       "(scheduling or the node stalled); task cancelled")

    def close(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        if self._owns_ray:
            self._ray.shutdown()
