r"""Greene's travel-mode choice data (statsmodels `modechoice`) as per-traveller arrays.

210 travellers between Sydney and Melbourne each chose one of J = 4 modes
(air, train, bus, car). statsmodels ships it in long format (840 rows = 210 x 4); this
loader reshapes it to

    attributes (210, 4, p)  alternative attributes (default: gc, ttme)
    choice     (210,)       index of the chosen mode in ("air", "train", "bus", "car")
    income     (210,)       household income hinc ($1000s)
    party_size (210,)       travelling party size psize

Columns: ttme = terminal waiting time (0 for car), invc = in-vehicle cost, invt = in-vehicle
time, gc = generalised cost (dollars). Ships inside statsmodels; no download.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ModeChoice", "load_modechoice", "MODECHOICE_ALTERNATIVES", "MODECHOICE_ATTRIBUTES"]

MODECHOICE_ALTERNATIVES = ("air", "train", "bus", "car")
MODECHOICE_ATTRIBUTES = ("ttme", "invc", "invt", "gc")


class ModeChoice(NamedTuple):
    """The modechoice data per traveller (see module docstring for shapes)."""

    attributes: np.ndarray
    choice: np.ndarray
    income: np.ndarray
    party_size: np.ndarray
    attribute_names: tuple[str, ...]
    alternatives: tuple[str, ...]


def load_modechoice(attributes: tuple[str, ...] = ("gc", "ttme")) -> ModeChoice:
    """Load statsmodels' modechoice data as `(N=210, J=4, p)` attributes and choices `(210,)`.

    Args:
        attributes: alternative attributes to stack, any of ("ttme", "invc", "invt", "gc").
    """
    attributes = tuple(attributes)
    bad = [a for a in attributes if a not in MODECHOICE_ATTRIBUTES]
    if bad or not attributes:
        raise ValueError(
            f"`attributes` must be a non-empty subset of {MODECHOICE_ATTRIBUTES}, "
            f"got {attributes!r}"
        )
    from statsmodels.datasets import modechoice  # heavy import, only here

    df = modechoice.load_pandas().data.sort_values(["individual", "mode"])
    J = len(MODECHOICE_ALTERNATIVES)
    if len(df) % J:
        raise RuntimeError(f"modechoice: {len(df)} rows is not a multiple of {J} alternatives")
    N = len(df) // J
    modes = df["mode"].to_numpy().reshape(N, J)
    if not np.all(modes == np.arange(1, J + 1)[None]):
        raise RuntimeError("modechoice: every traveller must list modes 1..4 in order")
    chosen = df["choice"].to_numpy().reshape(N, J)
    if not np.all(chosen.sum(axis=1) == 1):
        raise RuntimeError("modechoice: every traveller must choose exactly one mode")
    X = np.stack([df[a].to_numpy(np.float64).reshape(N, J) for a in attributes], axis=-1)
    first = df.groupby("individual", sort=True).first()
    return ModeChoice(
        attributes=X.astype(np.float32),
        choice=np.argmax(chosen, axis=1).astype(np.int32),
        income=first["hinc"].to_numpy(np.float32),
        party_size=first["psize"].to_numpy(np.float32),
        attribute_names=attributes,
        alternatives=MODECHOICE_ALTERNATIVES,
    )
