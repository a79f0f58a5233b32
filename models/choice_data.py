r"""Discrete-choice data: choosers, alternatives, attributes, chooser variables, availability.

Chooser n = 1..N faces alternatives j = 1..J (a fixed, named set) and picks exactly one
available alternative. The container holds

    attributes  (N, J, A)  alternative attributes x_nja (e.g. cost, time)
    individual  (N, Q)     chooser variables z_nq (e.g. income), the same for every alternative
    available   (N, J)     bool: alternative j offered to chooser n (unavailable => P = 0)
    chosen      (N,)       index of the chosen alternative, always available

Built from a long-format table (one row per chooser x alternative, as mlogit, xlogit and biogeme
users have; a missing row means "not available") with `ChoiceData.from_long`, or from wide arrays
with `ChoiceData.from_arrays`. Values of unavailable alternatives are stored as 0 and never enter
a likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChoiceData"]


def _id(value):
    """A chooser id as a plain Python value (messages show 2, not np.int64(2))."""
    return value.item() if isinstance(value, np.generic) else value


def _names(arg: str, names, *, allow_empty: bool = True) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"`{arg}` must be a sequence of names, not the string {names!r}")
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names):
        raise ValueError(f"`{arg}` has duplicate names: {names}")
    if not allow_empty and not names:
        raise ValueError(f"`{arg}` must not be empty")
    return names


@dataclass(frozen=True, eq=False)
class ChoiceData:
    """Choice data in wide form (see the module docstring for the shapes).

    Attributes:
        attributes: `(N, J, A)` float64 alternative attributes (0 where unavailable).
        individual: `(N, Q)` float64 chooser variables.
        available: `(N, J)` bool availability.
        chosen: `(N,)` int32 index of the chosen alternative.
        alternatives: the J alternative names, in column order.
        attribute_names: the A attribute names.
        individual_names: the Q chooser-variable names.
        ids: `(N,)` chooser identifiers (from the long table's id column, else 0..N-1).
    """

    attributes: np.ndarray
    individual: np.ndarray
    available: np.ndarray
    chosen: np.ndarray
    alternatives: tuple[str, ...]
    attribute_names: tuple[str, ...]
    individual_names: tuple[str, ...]
    ids: np.ndarray

    def __post_init__(self):
        N, J, A = self.attributes.shape
        if self.individual.shape != (N, len(self.individual_names)):
            raise ValueError(
                f"`individual` must have shape ({N}, {len(self.individual_names)}), "
                f"got {self.individual.shape}"
            )
        if (J, A) != (len(self.alternatives), len(self.attribute_names)):
            raise ValueError(
                f"`attributes` {self.attributes.shape} does not match {J} alternatives "
                f"{self.alternatives} and {A} attribute names {self.attribute_names}"
            )
        if J < 2:
            raise ValueError(f"need at least 2 alternatives, got {self.alternatives}")
        if N < 1:
            raise ValueError("the data has no choosers (N = 0)")
        for name, arr in (("attributes", self.attributes), ("individual", self.individual)):
            if not np.all(np.isfinite(arr)):
                where = np.argwhere(~np.isfinite(arr))[0]
                n = int(where[0])
                if name == "attributes":
                    what = (f"attribute {self.attribute_names[where[2]]!r} of alternative "
                            f"{self.alternatives[where[1]]!r}")  # fmt: skip
                else:
                    what = f"chooser variable {self.individual_names[where[1]]!r}"
                raise ValueError(
                    f"`{name}` has a non-finite value ({arr[tuple(where)]}) in {what} for "
                    f"chooser {_id(self.ids[n])!r}"
                )
        if self.available.shape != (N, J) or self.chosen.shape != (N,):
            raise ValueError(
                f"`available` must be ({N}, {J}) and `chosen` ({N},); got "
                f"{self.available.shape} and {self.chosen.shape}"
            )
        bad = (self.chosen < 0) | (self.chosen >= J)
        if bad.any():
            n = int(np.argmax(bad))
            raise ValueError(
                f"`chosen` must index an alternative in [0, {J}); chooser {_id(self.ids[n])!r} "
                f"has {self.chosen[n]}"
            )
        unavailable = ~self.available[np.arange(N), self.chosen]
        if unavailable.any():
            n = int(np.argmax(unavailable))
            raise ValueError(
                f"chooser {_id(self.ids[n])!r} chose {self.alternatives[self.chosen[n]]!r}, "
                "which is not available to them"
            )

    # ------------------------------------------------------------------ shapes
    @property
    def num_choosers(self) -> int:
        return self.attributes.shape[0]

    @property
    def num_alternatives(self) -> int:
        return self.attributes.shape[1]

    def __len__(self) -> int:
        return self.num_choosers

    def shares(self) -> np.ndarray:
        """Observed choice shares `(J,)`."""
        return np.bincount(self.chosen, minlength=self.num_alternatives) / self.num_choosers

    def subset(self, index) -> ChoiceData:
        """The choosers selected by `index` (boolean mask or integer indices)."""
        index = np.asarray(index)
        return ChoiceData(
            self.attributes[index],
            self.individual[index],
            self.available[index],
            self.chosen[index],
            self.alternatives,
            self.attribute_names,
            self.individual_names,
            self.ids[index],
        )

    def with_attributes(self, **columns) -> ChoiceData:
        """A copy with attribute columns replaced, each `(N, J)` (scenario analysis)."""
        X = self.attributes.copy()
        for name, value in columns.items():
            if name not in self.attribute_names:
                raise ValueError(f"unknown attribute {name!r}; have {self.attribute_names}")
            value = np.broadcast_to(np.asarray(value, np.float64), X.shape[:2])
            X[..., self.attribute_names.index(name)] = np.where(self.available, value, 0.0)
        return ChoiceData(
            X,
            self.individual,
            self.available,
            self.chosen,
            self.alternatives,
            self.attribute_names,
            self.individual_names,
            self.ids,
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        attributes,
        chosen,
        *,
        alternatives,
        attribute_names,
        individual=None,
        individual_names=(),
        available=None,
        ids=None,
    ) -> ChoiceData:
        """Build from wide arrays.

        Args:
            attributes: `(N, J, A)` alternative attributes.
            chosen: `(N,)` integer index of the chosen alternative, or `(N, J)` 0/1 indicators
                (exactly one 1 per chooser).
            alternatives: J names. attribute_names: A names.
            individual: `(N, Q)` chooser variables (default none); individual_names: Q names.
            available: `(N, J)` bool (default all available).
            ids: `(N,)` chooser identifiers (default 0..N-1).

        Raises:
            ValueError: shapes that disagree, non-finite values, a chooser with zero or several
                chosen alternatives, or a chosen alternative that is not available.
        """
        alternatives = _names("alternatives", alternatives, allow_empty=False)
        attribute_names = _names("attribute_names", attribute_names)
        individual_names = _names("individual_names", individual_names)
        X = np.asarray(attributes, np.float64)
        if X.ndim != 3:
            raise ValueError(f"`attributes` must be (N, J, A), got shape {X.shape}")
        N = X.shape[0]
        ids = np.arange(N) if ids is None else np.asarray(ids)
        chosen = np.asarray(chosen)
        if chosen.ndim == 2:
            counts = chosen.sum(axis=1)
            if np.any(counts != 1):
                n = int(np.argmax(counts != 1))
                raise ValueError(
                    f"`chosen`: every chooser must choose exactly one alternative; chooser "
                    f"{_id(ids[n])!r} chose {int(counts[n])}"
                )
            chosen = np.argmax(chosen, axis=1)
        elif chosen.ndim != 1 or not np.issubdtype(chosen.dtype, np.integer):
            raise ValueError(
                f"`chosen` must be (N,) integers or (N, J) indicators, got {chosen.dtype} "
                f"{chosen.shape}"
            )
        Z = np.zeros((N, 0)) if individual is None else np.asarray(individual, np.float64)
        if Z.ndim == 1:
            Z = Z[:, None]
        avail = np.ones(X.shape[:2], bool) if available is None else np.asarray(available, bool)
        if avail.shape == X.shape[:2]:
            X = np.where(avail[..., None], X, 0.0)
        return cls(
            X, Z, avail, chosen.astype(np.int32), alternatives, attribute_names,
            individual_names, ids,
        )  # fmt: skip

    @classmethod
    def from_long(
        cls,
        table,
        *,
        id_col: str,
        alt_col: str,
        choice_col: str,
        attributes=(),
        individual=(),
        alternatives=None,
        availability_col: str | None = None,
    ) -> ChoiceData:
        """Build from a long-format table: one row per chooser x alternative.

        Args:
            table: a pandas DataFrame.
            id_col: chooser identifier column. alt_col: alternative name column.
            choice_col: 1/0 (or True/False, "yes"/"no") chosen indicator.
            attributes: alternative attribute columns. individual: chooser variable columns
                (must be constant within a chooser).
            alternatives: the order of the alternatives (default: order of first appearance).
            availability_col: optional 1/0 column; rows missing from the table and rows with
                availability 0 are unavailable alternatives.

        Raises:
            ValueError: a missing column, an unknown alternative, duplicate (id, alternative)
                rows, a chooser variable that varies within a chooser, a chooser with zero or
                several chosen alternatives, an unavailable chosen alternative.
        """
        import pandas as pd

        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"`table` must be a pandas DataFrame, got {type(table).__name__}")
        attributes = _names("attributes", attributes)
        individual = _names("individual", individual)
        cols = [id_col, alt_col, choice_col, *attributes, *individual]
        cols += [availability_col] if availability_col else []
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise ValueError(f"columns {missing} not in the table; have {list(table.columns)}")
        alts_seen = tuple(str(a) for a in pd.unique(table[alt_col]))
        if alternatives is None:
            alternatives = alts_seen
        alternatives = _names("alternatives", alternatives, allow_empty=False)
        unknown = sorted(set(alts_seen) - set(alternatives))
        if unknown:
            raise ValueError(f"unknown alternatives {unknown} in column {alt_col!r}")
        if table.duplicated([id_col, alt_col]).any():
            row = table[table.duplicated([id_col, alt_col])].iloc[0]
            raise ValueError(
                f"duplicate rows for chooser {_id(row[id_col])!r} and alternative "
                f"{_id(row[alt_col])!r}"
            )
        ids = pd.unique(table[id_col])
        n_idx = pd.Index(ids).get_indexer(table[id_col])
        j_idx = pd.Index(alternatives).get_indexer(table[alt_col].astype(str))
        N, J = len(ids), len(alternatives)
        X = np.zeros((N, J, len(attributes)))
        for a, col in enumerate(attributes):
            X[n_idx, j_idx, a] = table[col].to_numpy(np.float64)
        avail = np.zeros((N, J), bool)
        avail[n_idx, j_idx] = (
            True if availability_col is None else table[availability_col].to_numpy() != 0
        )
        raw = table[choice_col]
        if raw.dtype == object:
            flag = raw.astype(str).str.lower().isin(["1", "yes", "true", "y"]).to_numpy()
        else:
            flag = raw.to_numpy() != 0
        C = np.zeros((N, J), np.int64)
        C[n_idx, j_idx] = flag
        counts = C.sum(axis=1)
        if np.any(counts != 1):
            n = int(np.argmax(counts != 1))
            raise ValueError(
                f"`{choice_col}`: every chooser must choose exactly one alternative; chooser "
                f"{_id(ids[n])!r} chose {int(counts[n])}"
            )
        Z = np.zeros((N, len(individual)))
        for q, col in enumerate(individual):
            grouped = table.groupby(id_col, sort=False)[col]
            if (grouped.nunique() > 1).any():
                bad = grouped.nunique().idxmax()
                raise ValueError(f"chooser variable {col!r} varies within chooser {_id(bad)!r}")
            Z[:, q] = grouped.first().reindex(ids).to_numpy(np.float64)
        return cls.from_arrays(
            X,
            C,
            alternatives=alternatives,
            attribute_names=attributes,
            individual=Z,
            individual_names=individual,
            available=avail,
            ids=np.asarray(ids),
        )

    def to_long(self):
        """The long-format pandas DataFrame (available rows only): id, alt, chosen, columns."""
        import pandas as pd

        n, j = np.nonzero(self.available)
        out = {"id": self.ids[n], "alt": np.asarray(self.alternatives, object)[j]}
        out["chosen"] = (self.chosen[n] == j).astype(int)
        for a, name in enumerate(self.attribute_names):
            out[name] = self.attributes[n, j, a]
        for q, name in enumerate(self.individual_names):
            out[name] = self.individual[n, q]
        return pd.DataFrame(out)
