"""`inference.data.validate_data`: the whole data set checked once, eagerly, naming the array,
the index or the label value; K read from the model's `net` or `num_classes` keyword."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference import validate_data

X = np.zeros((5, 2), np.float32)
Y = np.array([0, 1, 2, 1, 0], np.int32)


def test_good_data_passes_and_returns_size(make_classifier):
    net = make_classifier(jax.random.key(0), num_features=2)
    data, n = validate_data("data", (X, Y), model_kwargs={"net": net})
    assert n == 5 and len(data) == 2 and data[1].dtype == jnp.int32
    # integer inputs are not labels unless last; bool inputs pass
    validate_data("data", (np.arange(5), X.astype(bool), Y))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_name_array_and_index(bad):
    x = X.copy()
    x[3, 1] = bad
    with pytest.raises(ValueError, match=r"`data\[0\]`.*non-finite.*\(3, 1\)"):
        validate_data("data", (x, Y))


def test_labels_checked_against_the_net_head(make_classifier):
    net = make_classifier(jax.random.key(0), num_features=2)  # K = 3
    for label in (3, 7):
        with pytest.raises(ValueError, match=rf"`data\[1\] \(labels\)`.*K=3.*found label {label}"):
            validate_data("data", (X, np.array([0, 1, label, 0, 0])), model_kwargs={"net": net})
    with pytest.raises(ValueError, match=r"found label -1"):
        validate_data("data", (X, np.array([0, -1, 2, 0, 0])), model_kwargs={"net": net})


def test_labels_without_a_known_k_must_be_non_negative():
    validate_data("data", (X, np.array([0, 1, 9, 0, 0])))  # no K: any label >= 0 passes
    with pytest.raises(ValueError, match=r"`d\[1\] \(labels\)` must be >= 0.*found label -2"):
        validate_data("d", (X, np.array([0, 1, -2, 0, 0])))


def test_k_from_a_num_classes_keyword_or_argument():
    with pytest.raises(ValueError, match="K=2.*found label 2"):
        validate_data("data", (X, Y), model_kwargs={"num_classes": 2})
    with pytest.raises(ValueError, match="K=2.*found label 2"):
        validate_data("data", (X, Y), num_classes=2)


def test_multilabel_targets_must_be_indicators(make_classifier):
    net = make_classifier(jax.random.key(0), num_features=2, multilabel=True)
    y = np.zeros((5, 3), np.float32)
    validate_data("data", (X, y), model_kwargs={"net": net})
    y[2, 1] = 0.5
    with pytest.raises(ValueError, match=r"`data\[1\] \(labels\)`.*0/1.*0.5"):
        validate_data("data", (X, y), model_kwargs={"net": net})


def test_shape_errors():
    with pytest.raises(TypeError, match="non-empty tuple"):
        validate_data("data", X)
    with pytest.raises(ValueError, match="leading size"):
        validate_data("data", (X, Y[:4]))
