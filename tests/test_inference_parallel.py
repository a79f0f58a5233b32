"""Data-parallel `fit` and `fit_ensemble` over 4 forced CPU devices == the one-device runs
(in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, jax, jax.numpy as jnp
    jax.config.update("jax_numpy_rank_promotion", "raise")
    from inference import Validation, fit, fit_ensemble
    from models import MLP, Classifier, HeteroscedasticHead, classifier_model
    from models.synthetic import make_synthetic_classification

    assert len(jax.devices()) == 4, jax.devices()
    d = make_synthetic_classification(256, 4, key=jax.random.key(0))
    def make_net(key):
        k1, k2 = jax.random.split(key)
        return Classifier(MLP(4, 8, width=16, depth=1, key=k1),
                          HeteroscedasticHead(8, 4, rank=2, num_train_samples=16, key=k2))
    net = make_net(jax.random.key(1))
    out = {}
    for name, devices in (("single", None), ("parallel", jax.devices())):
        r = fit(classifier_model, None, (d.x, d.y), num_epochs=3, batch_size=64,
                key=jax.random.key(3), net=net, progress=False, devices=devices)
        leaves = jax.tree.leaves(r.params)
        out[name] = {"losses": r.losses.tolist(),
                     "params": [jnp.ravel(x).tolist() for x in leaves],
                     "sharding": str(leaves[0].sharding)}
    for name, devices in (("ens_single", None), ("ens_parallel", jax.devices())):
        r = fit_ensemble(classifier_model, None, (d.x[:192], d.y[:192]), num_members=2,
                         num_epochs=2, batch_size=64, key=jax.random.key(3), progress=False,
                         member_kwargs=lambda k: {"net": make_net(k)},
                         validation=Validation((d.x[192:], d.y[192:])), devices=devices)
        out[name] = {"losses": r.losses.tolist(), "val": r.val_history.tolist(),
                     "params": [jnp.ravel(x).tolist() for x in jax.tree.leaves(r.params)]}
    print("RESULT" + json.dumps(out))
    """
)


def test_data_parallel_fit_matches_single_device():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env.update(
        # the suite's XLA flags (tests/conftest.py) kept, four CPU devices added
        XLA_FLAGS=f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip(),
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    out = json.loads(line[len("RESULT") :])
    single, parallel = out["single"], out["parallel"]
    assert "'data': 4" in parallel["sharding"]  # parameters replicated over the 4-device mesh
    import numpy as np

    np.testing.assert_allclose(parallel["losses"], single["losses"], rtol=1e-5)
    for a, b in zip(parallel["params"], single["params"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    ens, ens_par = out["ens_single"], out["ens_parallel"]
    np.testing.assert_allclose(ens_par["losses"], ens["losses"], rtol=1e-5)
    np.testing.assert_allclose(ens_par["val"], ens["val"], rtol=1e-5)
    for a, b in zip(ens_par["params"], ens["params"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
