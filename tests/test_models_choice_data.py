"""ChoiceData: long and wide construction, availability, round trip, bad input."""

import numpy as np
import pandas as pd
import pytest

from models import ChoiceData


def _long_table():
    # chooser 7 has no "bus" row (unavailable); chooser 9 has all three
    return pd.DataFrame(
        {
            "id": [7, 7, 9, 9, 9],
            "alt": ["car", "train", "car", "bus", "train"],
            "chosen": [0, 1, 1, 0, 0],
            "cost": [5.0, 3.0, 6.0, 1.0, 2.0],
            "income": [30.0, 30.0, 50.0, 50.0, 50.0],
        }
    )


def test_from_long_pivots_and_marks_missing_rows_unavailable():
    d = ChoiceData.from_long(
        _long_table(), id_col="id", alt_col="alt", choice_col="chosen",
        attributes=("cost",), individual=("income",), alternatives=("car", "bus", "train"),
    )  # fmt: skip
    assert d.alternatives == ("car", "bus", "train") and d.num_choosers == 2
    np.testing.assert_array_equal(d.ids, [7, 9])
    np.testing.assert_array_equal(d.available, [[True, False, True], [True, True, True]])
    np.testing.assert_array_equal(d.chosen, [2, 0])
    np.testing.assert_array_equal(d.attributes[..., 0], [[5.0, 0.0, 3.0], [6.0, 1.0, 2.0]])
    np.testing.assert_array_equal(d.individual[:, 0], [30.0, 50.0])
    np.testing.assert_allclose(d.shares(), [0.5, 0.0, 0.5])
    # round trip through the long format keeps every available row
    back = d.to_long()
    assert len(back) == 5
    again = ChoiceData.from_long(
        back, id_col="id", alt_col="alt", choice_col="chosen", attributes=("cost",),
        individual=("income",), alternatives=d.alternatives,
    )  # fmt: skip
    np.testing.assert_array_equal(again.attributes, d.attributes)
    np.testing.assert_array_equal(again.available, d.available)


def test_from_arrays_with_indicator_choices_and_subset():
    X = np.arange(12.0).reshape(2, 3, 2)
    d = ChoiceData.from_arrays(
        X, np.array([[0, 1, 0], [1, 0, 0]]), alternatives=("a", "b", "c"),
        attribute_names=("x", "y"),
    )  # fmt: skip
    np.testing.assert_array_equal(d.chosen, [1, 0])
    assert d.subset([1]).num_choosers == 1 and d.subset([1]).chosen[0] == 0
    d2 = d.with_attributes(x=np.zeros((2, 3)))
    assert np.all(d2.attributes[..., 0] == 0) and np.all(d2.attributes[..., 1] == X[..., 1])


@pytest.mark.parametrize(
    "chosen, match",
    [([0, 0, 0, 0, 0], r"chooser \d+ chose 0"), ([0, 1, 1, 1, 0], r"chooser \d+ chose 2")],
)
def test_chooser_with_zero_or_two_chosen_alternatives_raises(chosen, match):
    t = _long_table().assign(chosen=chosen)
    with pytest.raises(ValueError, match=match):
        ChoiceData.from_long(t, id_col="id", alt_col="alt", choice_col="chosen")


def test_bad_long_tables_raise():
    t = _long_table()
    with pytest.raises(ValueError, match="columns.*price"):
        ChoiceData.from_long(t, id_col="id", alt_col="alt", choice_col="chosen",
                             attributes=("price",))  # fmt: skip
    with pytest.raises(ValueError, match="unknown alternatives.*'bus'"):
        ChoiceData.from_long(t, id_col="id", alt_col="alt", choice_col="chosen",
                             alternatives=("car", "train"))  # fmt: skip
    with pytest.raises(ValueError, match="duplicate rows"):
        ChoiceData.from_long(pd.concat([t, t.iloc[:1]]), id_col="id", alt_col="alt",
                             choice_col="chosen")  # fmt: skip
    with pytest.raises(ValueError, match="varies within chooser"):
        ChoiceData.from_long(t.assign(income=[1.0, 2, 3, 3, 3]), id_col="id", alt_col="alt",
                             choice_col="chosen", individual=("income",))  # fmt: skip
    with pytest.raises(ValueError, match="not available"):
        ChoiceData.from_arrays(np.zeros((1, 2, 1)), np.array([1]), alternatives=("a", "b"),
                               attribute_names=("x",), available=[[True, False]])  # fmt: skip
    with pytest.raises(ValueError, match="non-finite"):
        ChoiceData.from_arrays(np.full((1, 2, 1), np.nan), np.array([0]),
                               alternatives=("a", "b"), attribute_names=("x",))  # fmt: skip
    # the message names the attribute, the alternative and the chooser id as a plain value
    X = np.zeros((2, 2, 2))
    X[1, 1, 1] = np.inf
    with pytest.raises(ValueError, match=r"attribute 'y' of alternative 'b' for chooser 7$"):
        ChoiceData.from_arrays(X, np.array([0, 1]), alternatives=("a", "b"),
                               attribute_names=("x", "y"), ids=np.array([3, 7]))  # fmt: skip
    with pytest.raises(TypeError, match="alternatives"):
        ChoiceData.from_arrays(np.zeros((1, 2, 1)), np.array([0]), alternatives="ab",
                               attribute_names=("x",))  # fmt: skip
