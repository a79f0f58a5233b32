"""ChoiceSpec: coefficient names, the design matrix against a hand-built one, bad specs."""

import jax
import numpy as np
import pytest

from models import ChoiceData, ChoiceSpec
from models.choice_spec import design_layout, design_matrix


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return ChoiceData.from_arrays(
        rng.normal(size=(5, 3, 2)), np.array([0, 1, 2, 0, 1]), alternatives=("car", "bus", "air"),
        attribute_names=("cost", "time"), individual=rng.normal(size=(5, 1)),
        individual_names=("inc",),
    )  # fmt: skip


def test_names_and_design_match_a_hand_built_matrix(data):
    spec = ChoiceSpec(
        base="bus", generic=("cost",), alternative_specific={"time": ("car", "air")},
        individual={"inc": ("air",)},
    )  # fmt: skip
    layout = design_layout(spec, data)
    assert layout.names == ("asc_car", "asc_air", "cost", "time_car", "time_air", "inc_air")
    assert layout.base == 1
    with jax.enable_x64(True):
        X = np.asarray(design_matrix(layout, data.attributes, data.individual))
    cost, time, inc = data.attributes[..., 0], data.attributes[..., 1], data.individual[:, 0]
    ref = np.zeros((5, 3, 6))
    ref[:, 0, 0] = 1
    ref[:, 2, 1] = 1
    ref[..., 2] = cost
    ref[:, 0, 3] = time[:, 0]
    ref[:, 2, 4] = time[:, 2]
    ref[:, 2, 5] = inc
    np.testing.assert_allclose(X, ref, rtol=1e-12)


def test_default_base_is_first_and_asc_can_be_dropped(data):
    assert design_layout(ChoiceSpec(generic=("cost",)), data).names == (
        "asc_bus",
        "asc_air",
        "cost",
    )
    assert design_layout(ChoiceSpec(generic=("cost",), asc=False), data).names == ("cost",)


@pytest.mark.parametrize(
    "spec, match",
    [
        (ChoiceSpec(generic=("price",)), "unknown attribute 'price'"),
        (ChoiceSpec(alternative_specific={"cost": ("boat",)}), "unknown alternatives.*boat"),
        (ChoiceSpec(individual={"age": ("air",)}), "unknown chooser variable 'age'"),
        (ChoiceSpec(base="train", generic=("cost",)), "base.*'train'.*not among"),
        (ChoiceSpec(base="car", individual={"inc": ("car",)}), "includes the base"),
        (ChoiceSpec(generic=("cost",), alternative_specific={"cost": ("air",)}), "both generic"),
        (ChoiceSpec(asc=False), "no coefficient"),
    ],
)
def test_bad_specs_raise(data, spec, match):
    with pytest.raises(ValueError, match=match):
        design_layout(spec, data)


def test_spec_arguments_must_be_tuples():
    with pytest.raises(TypeError, match="generic"):
        ChoiceSpec(generic="cost")
    with pytest.raises(TypeError, match="individual"):
        ChoiceSpec(individual={"inc": "air"})
