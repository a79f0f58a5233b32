"""The host side of `run_training`'s epoch loop: validation, the loop itself, progress.

`_epochs` runs one compiled epoch at a time (`svi.run_epoch` under `jit`, built by the
driver), and after each: stops with a `FloatingPointError` at the first non-finite loss,
records the validation metric (`_validator`: the metric at the current parameters, kept in
the state's `EarlyStoppingState`), updates the tqdm bar, saves the checkpoint, calls the
callback and stops early after `patience` epochs without improvement. Private to
`inference`; `inference.driver` is its only user.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from .checkpoint import save_checkpoint
from .svi import update_early_stopping, validation_loss

_VAL_KEY_SALT = 0x5A1


def _raise_nonfinite(what: str, epoch: int, first_step, steps: int, values):
    """Raise naming the epoch, the step and (ensembles) the members with a NaN / inf."""
    where = f"epoch {epoch}"
    if first_step is not None:
        first = np.atleast_1d(first_step)
        bad = np.flatnonzero(first >= 0)
        where += f", step {int(first[bad[0]]) + 1} of {steps}"
    else:
        bad = np.flatnonzero(~np.isfinite(np.atleast_1d(values)))
    if np.size(values) > 1:
        where += f", member(s) {bad.tolist()}"
    raise FloatingPointError(
        f"non-finite {what} (NaN or inf) at {where}; the fit stopped (the last checkpoint, "
        "if any, is the previous epoch). Check the learning rate and the model."
    )


def _validator(svi, validation, keys, dyn, kw, vmap, get_params, batched):
    """`validate(state) -> (state, values)`: the metric at the current parameters, recorded
    in the state's `EarlyStoppingState` (per member under `vmap`)."""
    m_dyn, s_dyn = dyn
    patience = validation.patience

    def record(st, v, p):
        stopping = update_early_stopping(st.stopping, v, p, st.epoch, patience=patience)
        return st._replace(stopping=stopping)

    record = jax.jit(vmap(record, 0, 0, 0))
    if validation.metric is None:
        val_keys = vmap(lambda k: jax.random.fold_in(k, _VAL_KEY_SALT), 0)(keys)
        loss = jax.jit(
            vmap(
                lambda p, d, k, m, s: validation_loss(svi, p, d, key=k, model_kwargs=kw(m, s)),
                *(0, None, 0, 0, None),
            )
        )

        def metric(params):
            return np.asarray(loss(params, validation.data, val_keys, m_dyn, s_dyn))

    else:

        def metric(params):
            def one(pick):
                args = (pick(params), *validation.data)
                return float(validation.metric(*args, **kw(pick(m_dyn), s_dyn)))

            if not batched:
                return np.asarray(one(lambda t: t))
            num_members = jax.tree.leaves(keys)[0].shape[0]
            return np.asarray(
                [one(lambda t, i=i: jax.tree.map(lambda x: x[i], t)) for i in range(num_members)]
            )

    def validate(st):
        params = get_params(st)
        values = metric(params)
        return record(st, jax.numpy.asarray(values, jax.numpy.float32), params), values

    return validate


def _epochs(
    run, state, *, num_epochs, steps, validate, patience, progress, desc, callback, checkpoint_path
):
    """The host loop: epochs, checks, validation, progress, checkpoints, stopping."""
    start = int(np.max(np.asarray(state.epoch)))
    step_losses, val_hist, epoch_s, val_s = [], [], [], 0.0
    bar = _progress(range(start, num_epochs), progress, desc)
    t_train = time.perf_counter()
    for e in bar:
        t_e = time.perf_counter()
        state, info = run(state)
        losses = np.asarray(info.losses)  # blocks: one epoch in flight at a time
        if np.any(np.asarray(info.first_nonfinite) >= 0):
            _raise_nonfinite("loss", e + 1, np.asarray(info.first_nonfinite), steps, losses.sum(-1))
        step_losses.append(losses)
        epoch_s.append(time.perf_counter() - t_e)
        mean = losses.mean(axis=-1)
        postfix = {"loss": np.array2string(mean, precision=4)}
        if validate is not None:
            t_v = time.perf_counter()
            state, value = validate(state)
            val_s += time.perf_counter() - t_v
            if not np.all(np.isfinite(value)):
                _raise_nonfinite("validation metric", e + 1, None, steps, value)
            val_hist.append(value)
            postfix["val"] = np.array2string(value, precision=4)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(postfix)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, state)
        stop = callback is not None and bool(
            callback(e + 1, state, mean if mean.ndim else float(mean))
        )
        if stop or (
            patience is not None and np.all(np.asarray(state.stopping.num_bad_epochs) >= patience)
        ):
            break
    if hasattr(bar, "close"):
        bar.close()
    return state, (step_losses, val_hist, epoch_s, time.perf_counter() - t_train, val_s)


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="epoch")
