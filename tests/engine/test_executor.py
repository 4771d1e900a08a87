"""The executor seam (robust/engine): local processes and Ray give the same results, send the
shared state once, raise robust's errors as themselves; Ray retries a task whose worker dies
and runs independent graph nodes at the same time; seeded models are the same everywhere."""

from __future__ import annotations

import subprocess
import sys

import pytest
import ray
import torch

from robust import engine, models
from robust.errors import ConfigError
from tests.engine import tasks

SHARED = {"w": torch.arange(4.0)}  # sum 6


@pytest.fixture(scope="module")
def on_ray():
    """A local Ray instance of 2 CPUs for this module."""
    engine.disconnect()
    engine.connect(num_cpus=2)
    yield
    engine.disconnect()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_cpus": 0}, "num_cpus must be > 0, but got num_cpus=0"),
        ({"num_gpus": -0.5}, "num_gpus must be a fraction in [0, 1] or a whole number"),
        ({"num_gpus": 1.5}, "num_gpus must be a fraction in [0, 1] or a whole number"),
        ({"max_retries": -1}, "max_retries must be an int >= 0, but got -1"),
        ({"max_retries": True}, "max_retries must be an int >= 0, but got True"),
    ],
)
def test_resources_refuse_bad_values(kwargs, message):
    with pytest.raises(ConfigError) as caught:
        engine.Resources(**kwargs)
    assert str(caught.value).startswith(message)


def test_resources_threads_are_whole_cpus_at_least_one():
    assert engine.Resources(num_cpus=0.5).threads == 1
    assert engine.Resources(num_cpus=3).threads == 3
    assert engine.Resources(num_gpus=0.25).num_gpus == 0.25


def test_an_unknown_engine_is_a_one_line_error():
    with pytest.raises(
        ConfigError, match=r"^engine must be one of local, ray, but got engine='spark'$"
    ):
        engine.open_executor("spark", SHARED)


def test_local_workers_receive_the_shared_state_once_and_run_every_call():
    with engine.open_executor("local", SHARED, workers=2) as ex:
        out = [ex.submit(tasks.scaled, x).result() for x in range(6)]
        assert {ex.submit(tasks.threads).result() for _ in range(4)} == {1}
    assert [v for _, _, v in out] == [6.0 * x for x in range(6)]
    copies: dict[int, set[int]] = {}
    for pid, ident, _ in out:
        copies.setdefault(pid, set()).add(ident)
    assert all(len(ids) == 1 for ids in copies.values())  # one copy per worker, not per call


def test_ray_puts_the_shared_state_once_and_agrees_with_local(on_ray, monkeypatch):
    puts = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kw: puts.append(1) or real_put(value, **kw))
    with engine.open_executor("ray", SHARED) as ex:
        out = [ex.submit(tasks.scaled, x) for x in range(6)]
        values = [t.result()[2] for t in out]
        assert ex.submit(tasks.threads).result() == 1  # one torch thread per one-CPU task
    assert len(puts) == 1
    assert values == [6.0 * x for x in range(6)]


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_robust_error_in_a_task_is_raised_as_itself(kind, request):
    if kind == "ray":
        request.getfixturevalue("on_ray")
    with engine.open_executor(kind, SHARED, workers=1) as ex, pytest.raises(ConfigError) as caught:
        ex.submit(tasks.refuse, 7).result()
    assert str(caught.value) == "value must be below 3, but got value=7"  # one line, no Ray text


def test_ray_retries_a_task_whose_worker_died(on_ray, tmp_path):
    marker = tmp_path / "died"
    with engine.open_executor("ray", SHARED, resources=engine.Resources(max_retries=2)) as ex:
        assert ex.submit(tasks.die_once, str(marker), 2.0).result() == 12.0
    assert marker.exists()  # the first attempt did die


def test_ray_without_retries_reports_the_dead_worker(on_ray, tmp_path):
    once = engine.Resources(max_retries=0)
    with (
        engine.open_executor("ray", SHARED, resources=once) as ex,
        pytest.raises(ray.exceptions.WorkerCrashedError),
    ):
        ex.submit(tasks.die_once, str(tmp_path / "died"), 2.0).result()


GRAPH = [
    engine.Node("a", tasks.interval, ("a", 1.5)),
    engine.Node("b", tasks.interval, ("b", 1.5)),
    engine.Node("c", tasks.interval, ("c", 0.1), needs=("a", "b")),
]


def test_run_graph_locally_runs_in_order_and_passes_results_on():
    done = dict(engine.run_graph("local", GRAPH))
    assert list(done) == ["a", "b", "c"]
    assert done["c"][3] == ("a", "b")
    assert done["a"][2] <= done["b"][1]  # one after the other


def test_run_graph_on_ray_runs_independent_nodes_at_once_and_waits_for_needs(on_ray):
    done = dict(engine.run_graph("ray", GRAPH))
    (_, a0, a1, _), (_, b0, b1, _), (_, c0, _, needed) = done["a"], done["b"], done["c"]
    assert max(a0, b0) < min(a1, b1)  # a and b overlapped
    assert c0 >= max(a1, b1) and needed == ("a", "b")


def test_run_graph_refuses_a_node_that_needs_a_later_one():
    nodes = [engine.Node("c", tasks.interval, ("c", 0), needs=("a",)), GRAPH[0]]
    with pytest.raises(ConfigError, match=r"^node 'c' needs a, which no node before it is$"):
        list(engine.run_graph("local", nodes))


def test_a_failing_graph_node_raises_its_error_and_cancels_the_rest(on_ray):
    nodes = [
        engine.Node("bad", tasks.refuse, (None, 5)),
        engine.Node("after", tasks.interval, ("after", 0), needs=("bad",)),
    ]
    with pytest.raises(ConfigError, match=r"^value must be below 3, but got value=5$"):
        list(engine.run_graph("ray", nodes))


def test_a_seeded_model_fits_to_the_same_weights_in_any_process_and_on_any_worker(on_ray):
    """Bit for bit with the same torch thread count (a Ray task has one thread per CPU it
    holds); other thread counts change float rounding only."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = tasks.seeded_fit(None, 3)
    finally:
        torch.set_num_threads(threads)
    with engine.open_executor("ray", None) as ex:
        there = [ex.submit(tasks.seeded_fit, 3) for _ in range(2)]
        there = [t.result() for t in there]
    for weights in there:
        assert weights.keys() == here.keys()
        for k in here:
            torch.testing.assert_close(weights[k], here[k], rtol=0, atol=0)


def test_build_with_a_seed_repeats_and_leaves_the_global_random_state():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = models.build("digits_cnn", (1, 8, 8), 10, seed=5)
    b = models.build("digits_cnn", (1, 8, 8), 10, seed=5)
    c = models.build("digits_cnn", (1, 8, 8), 10, seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (k, x), y, z in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), k
        if x.dim() > 1:
            assert not torch.equal(x, z), k
    with pytest.raises(ConfigError, match=r"^seed must be an int >= 0 or None, but got seed=-1$"):
        models.build("digits_cnn", seed=-1)


CHECK = """
import sys
import robust, robust.engine, robust.retraining, robust.tracking
from robust import engine
with engine.open_executor("local", 1, workers=1) as ex:
    pass
print("ray" in sys.modules)
"""


def test_importing_robust_and_the_local_engine_never_import_ray():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
