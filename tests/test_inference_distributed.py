"""Multi-process `fit` (`inference.distributed`): 2 processes on loopback, each holding half
of the data, == the one-process fit on the whole data set."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from inference import distributed, fit
from models import classifier_model
from models.synthetic import make_synthetic_classification

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    from inference import distributed
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    distributed.initialize(f"127.0.0.1:{port}", 2, pid)  # before anything else uses JAX
    import jax.numpy as jnp
    from inference import fit
    from models import MLP, Classifier, HeteroscedasticHead, classifier_model
    from models.synthetic import make_synthetic_classification

    assert jax.process_count() == 2 and len(jax.devices()) == 2, jax.devices()
    d = make_synthetic_classification(256, 4, key=jax.random.key(0))
    k1, k2 = jax.random.split(jax.random.key(1))
    net = Classifier(MLP(4, 8, width=16, depth=1, key=k1),
                     HeteroscedasticHead(8, 4, rank=2, num_train_samples=16, key=k2))
    part = slice(128 * pid, 128 * (pid + 1))  # this process's half of the examples
    data = distributed.global_data((d.x[part], d.y[part]))
    r = fit(classifier_model, None, data, num_epochs=2, batch_size=64, key=jax.random.key(3),
            net=net, progress=False, devices=jax.devices())
    out = {"losses": r.losses.tolist(),
           "params": [jnp.ravel(x).tolist() for x in jax.tree.leaves(r.params)],
           "global_rows": data[0].shape[0],
           "local_rows": sum(s.data.shape[0] for s in data[0].addressable_shards)}
    print("RESULT" + json.dumps(out), flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_fit_equals_one_process(make_classifier):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    # one CPU device per process: the suite's XLA flags (tests/conftest.py) without a device count
    env["XLA_FLAGS"] = " ".join(
        flag for flag in env.get("XLA_FLAGS", "").split() if "device_count" not in flag
    )
    env.update(
        JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    )
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", WORKER, str(port), str(pid)],
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in range(2)
    ]
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=300)
            assert p.returncode == 0, stderr[-3000:]
            line = next(x for x in stdout.splitlines() if x.startswith("RESULT"))
            outs.append(json.loads(line[len("RESULT") :]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()

    # the reference: one process, the whole data set, the same network, key and sizes
    d = make_synthetic_classification(256, 4, key=jax.random.key(0))
    net = make_classifier(
        jax.random.key(1), hidden=8, width=16, num_classes=4, rank=2, num_train_samples=16
    )
    ref = fit(
        classifier_model, None, (d.x, d.y), num_epochs=2, batch_size=64,
        key=jax.random.key(3), net=net, progress=False,
    )  # fmt: skip
    for out in outs:  # both processes hold the same (replicated) result
        assert out["global_rows"] == 256 and out["local_rows"] == 128
        np.testing.assert_allclose(out["losses"], ref.losses, rtol=1e-5)
        for a, b in zip(out["params"], jax.tree.leaves(ref.params), strict=True):
            np.testing.assert_allclose(a, np.ravel(b), rtol=1e-4, atol=1e-6)


def test_global_data_rejects_ragged_parts():
    with pytest.raises(ValueError, match="local_data"):
        distributed.global_data((np.zeros((4, 2)), np.zeros(3)))
    with pytest.raises(TypeError, match="local_data"):
        distributed.global_data([])


def test_initialize_names_a_bad_environment_variable(monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES"):
        distributed.initialize("127.0.0.1:1", process_id=0)
