"""The Ray executor against a local Ray cluster: the same points, statuses and columns as the local
executor, task failures as rows, and a killed driver resumed like a local one."""
from __future__ import annotations

import builtins
import sys
from pathlib import Path

import pytest

from harness import runner, store
from harness.cli import main
from harness.errors import UserError
from harness.executors import make_executor
from tests.fake_workload import FAULTS
from tests.test_runner import assert_every_point_once, fake_suite, start_and_kill, write_slow_suite

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def sweep(tmp_path: Path, name: str, executor: str) -> store.Run:
    suite = fake_suite(prompt_tokens=[0, FAULTS["raise"], FAULTS["hang"], FAULTS["sigkill"]])
    suite = suite.model_copy(update={"run": suite.run.model_copy(update={"executor": executor, "cpus_per_point": 1})})
    run_dir = tmp_path / name
    store.create_run(run_dir, suite.model_dump(mode="json"), "test", run_id=name)
    runner.execute(run_dir, make_executor(suite.run, suite.measure))
    return store.load_run(run_dir)


def test_ray_gives_the_same_points_statuses_and_columns_as_local(tmp_path, cluster):
    local, distributed = sweep(tmp_path, "local", "local"), sweep(tmp_path, "ray", "ray")
    statuses = {name: store.point_statuses(run.results) for name, run in (("local", local), ("ray", distributed))}
    assert statuses["ray"] == statuses["local"]
    assert sorted(set(statuses["ray"].values())) == ["crash", "error", "ok", "timeout"]
    assert list(distributed.results.columns) == list(local.results.columns)
    assert len(distributed.results) == len(local.results) and len(distributed.samples) == len(local.samples)
    ok = distributed.results[distributed.results["status"] == "ok"]
    assert ok["node"].str.contains("/").all() and (ok["device_name"] != "").all()


def test_a_killed_ray_driver_resumes_to_every_point_exactly_once(tmp_path, cluster):
    suite_path = write_slow_suite(tmp_path, executor="ray")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", "run", str(suite_path), "--out", str(run_dir), "--quiet",
           "--address", cluster]
    start_and_kill(cmd, run_dir, after_parts=2)
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0  # this process's cluster
    assert_every_point_once(run_dir, suite_path)


def test_task_deaths_are_classified():
    from ray import exceptions as rx

    from harness.executors.ray_executor import classify_ray_error

    assert classify_ray_error(rx.OutOfMemoryError("memory monitor killed the worker"))[0] == "oom"
    assert classify_ray_error(rx.NodeDiedError("node lost"))[0] == "crash"
    assert classify_ray_error(rx.WorkerCrashedError())[0] == "crash"
    assert classify_ray_error(rx.GetTimeoutError("late"))[0] == "timeout"
    raised = rx.RayTaskError("run_on_node", "traceback", MemoryError("no room"))
    assert classify_ray_error(raised) == ("oom", "the Ray task raised MemoryError: no room")


def test_requesting_ray_without_it_installed_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    suite = fake_suite()
    with pytest.raises(UserError, match=r"pip install 'lalm-bench\[ray\]'"):
        make_executor(suite.run.model_copy(update={"executor": "ray"}), suite.measure)
