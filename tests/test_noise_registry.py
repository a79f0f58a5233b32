"""The noise registry: one public name per structure, its raw outputs and its builder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp
from hetprobit import noise as hn
from hetprobit.noise import registry

K, R, D, B = 4, 2, 6, 3


def test_names_are_canonical_and_cover_every_structure_class():
    assert tuple(hn.NOISE_STRUCTURES) == (
        "homoscedastic",
        "diagonal",
        "low_rank",
        "parameter_efficient",
        "hetxl",
        "full",
    )
    classes = {hn.get_noise_family(n).structure for n in hn.NOISE_STRUCTURES}
    assert classes == {
        hp.Homoscedastic,
        hp.DiagonalNoise,
        hp.LowRankNoise,
        hp.ParameterEfficientNoise,
        hp.HetXLNoise,
        hp.FullNoise,
    }


def test_aliases_resolve_to_the_canonical_family():
    assert dict(hn.NOISE_ALIASES) == {"lowrank": "low_rank", "efficient": "parameter_efficient"}
    assert hn.get_noise_family("lowrank") is hn.get_noise_family("low_rank")
    assert hn.get_noise_family("efficient").name == "parameter_efficient"
    assert "lowrank" not in hn.NOISE_STRUCTURES


@pytest.mark.parametrize(
    "name, shapes, rank_bound",
    [
        ("homoscedastic", {}, None),
        ("diagonal", {"scale": (K,)}, None),
        ("low_rank", {"scale": (K,), "factor": (K, R)}, "num_classes"),
        ("parameter_efficient", {"scale": (K,), "v": (K,), "factor": (K, R)}, "num_classes"),
        ("hetxl", {"scale": (D,), "factor": (D, R), "projection": (K, D)}, "in_features"),
        ("full", {"scale": (K,), "lower": (K * (K - 1) // 2,)}, None),
    ],
)
def test_declared_outputs_build_the_structure(name, shapes, rank_bound):
    family = hn.get_noise_family(name)
    assert family.output_shapes(num_classes=K, rank=R, in_features=D) == shapes
    assert family.rank_bound == rank_bound
    shared = {o.name for o in family.outputs if o.kind != "per_example"}
    assert shared == {"parameter_efficient": {"factor"}, "hetxl": {"projection"}}.get(name, set())
    keys = iter(jax.random.split(jax.random.key(0), 8))
    raw = {
        o.name: jax.random.normal(
            next(keys), shapes[o.name] if o.kind != "per_example" else (B, *shapes[o.name])
        )
        for o in family.outputs
    }
    noise = family.build(raw, num_classes=K, min_scale=1e-3)
    assert isinstance(noise, family.structure)
    assert noise.num_classes == K
    assert noise.batch_shape == (() if name == "homoscedastic" else (B,))
    eig = np.linalg.eigvalsh(np.asarray(noise.covariance()))
    assert eig.min() >= (-1e-6 if name in ("homoscedastic", "hetxl") else 1e-7)


def test_full_builder_fills_the_lower_triangle_in_tril_indices_order():
    raw = {"scale": jnp.zeros(3), "lower": jnp.array([1.0, 2.0, 3.0])}
    L = hn.get_noise_family("full").build(raw, num_classes=3, min_scale=1e-3).cholesky
    d = float(hp.positive_scale(jnp.zeros(())))
    expected = np.array([[d, 0, 0], [1.0, d, 0], [2.0, 3.0, d]])
    np.testing.assert_allclose(L, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "name, rank, match",
    [
        ("diagonal", 3, "`rank` does not apply to covariance='diagonal'"),
        ("homoscedastic", 0, "`rank` does not apply to covariance='homoscedastic'"),
        ("full", 1, "`rank` does not apply to covariance='full'"),
        ("low_rank", K, "1 <= rank < the number of classes K=4"),
        ("parameter_efficient", 0, "rank"),
        ("hetxl", D, "1 <= rank < in_features D=6 for covariance='hetxl'"),
    ],
)
def test_rank_is_checked_consistently(name, rank, match):
    with pytest.raises(ValueError, match=match):
        hn.get_noise_family(name).resolve_rank(rank, num_classes=K, in_features=D)


def test_default_rank():
    lr, xl = hn.get_noise_family("low_rank"), hn.get_noise_family("hetxl")
    assert lr.resolve_rank(None, num_classes=40, in_features=8) == 15
    assert lr.resolve_rank(None, num_classes=3, in_features=8) == 2
    assert xl.resolve_rank(None, num_classes=40, in_features=8) == 7
    assert hn.get_noise_family("diagonal").resolve_rank(None, num_classes=3, in_features=8) == 0


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match="`covariance` must be one of .*'full'.*got 'chol'"):
        hn.get_noise_family("chol")


def test_register_a_new_structure(monkeypatch):
    # adding a structure = one file that registers its family; registry copied for the test
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def build(raw, *, num_classes, min_scale):
        return hp.DiagonalNoise(hp.positive_scale(raw["s"], min_scale) * jnp.ones(num_classes))

    fam = hn.NoiseFamily(
        "isotropic", hp.DiagonalNoise, (hn.RawOutput("s", lambda K, R, D: (1,)),), build
    )
    assert hn.register_noise_family(fam) is fam
    assert "isotropic" in hn.NOISE_STRUCTURES and hn.NOISE_STRUCTURES[-1] == "isotropic"
    assert hn.get_noise_family("isotropic") is fam
    with pytest.raises(ValueError, match="already registered"):
        hn.register_noise_family(fam)
    with pytest.raises(ValueError, match="already registered"):
        hn.register_noise_family(hn.NoiseFamily("lowrank", hp.LowRankNoise, (), build))
    with pytest.raises(TypeError, match="NoiseStructure subclass"):
        hn.register_noise_family(hn.NoiseFamily("bad", int, (), build))
    with pytest.raises(ValueError, match="`kind`"):
        hn.RawOutput("x", lambda K, R, D: (K,), kind="global")
    with pytest.raises(ValueError, match="`rank_bound`"):
        hn.NoiseFamily("bad", hp.LowRankNoise, (), build, rank_bound="K")
