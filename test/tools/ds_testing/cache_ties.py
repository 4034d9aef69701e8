"""Rounding ties of a bf16 or fp8 latent cache.

A cache stores each new latent / rope-key value rounded to its element
type. The compiled model computes that value in f32, the reference in
float64: they differ by ~1e-7 relative, which is harmless everywhere except
where the float64 value lies that close to a rounding boundary (a bf16
midpoint, an e4m3 midpoint of x / scale). There the two round to different
neighbours, the stored values differ by a whole ulp (0.4% for bf16), and
every later token attends to that row: measured on tiny_v3 with a bf16
cache, one value 4.3e-7 from a midpoint moved the logits by 1.6e-3 while
the rest agreed to 2e-6. Neither rounding is wrong; f32 cannot decide it.

So the reference lists such ties (values within `window`, relative, of a
boundary: wider than f32 noise, narrow enough that a run has a handful)
and a parity check may store any of them as its other neighbour
(resolve_ties): everything else, more than 99% of the values, must still
round exactly as the reference does, so a cache write that truncates or
scales wrongly still fails.
"""
import numpy as np


def find_ties(x, stored, store, window):
    """(row, column, other value) for each value of x [t, n] whose stored
    form changes within x * (1 +- window); `store` maps an array to its
    stored values elementwise (for fp8: with the row's scales fixed)."""
    up, down = store(x * (1 + window)), store(x * (1 - window))
    rows, cols = np.nonzero(up != down)
    return [(int(t), int(j), float(down[t, j] if stored[t, j] == up[t, j] else up[t, j]))
            for t, j in zip(rows, cols)]


def fp8_fixed_scale(x, group, e4m3_max, round_e4m3):
    """A store for find_ties over the fp8 latent: values of rows shaped like
    x quantised with x's own group scales (perturbing a value must not move
    its scale, or every quotient would move with it)."""
    x32 = np.asarray(x, np.float32)
    t, dc = x32.shape
    scale = (np.abs(x32.reshape(t, dc // group, group)).max(axis=2, keepdims=True)
             / np.float32(e4m3_max)).astype(np.float32)

    def store(v):
        g = np.asarray(v, np.float32).reshape(t, dc // group, group)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(scale > 0, g / scale, np.float32(0)).astype(np.float32)
        deq = (round_e4m3(q.astype(np.float64)).astype(np.float32) * scale).astype(np.float32)
        return deq.reshape(t, dc).astype(np.float64)
    return store


def resolve_ties(run, rows_err, atol):
    """Greedy, in the order tokens are cached: run(flips) -> (cache, logits)
    runs the reference storing the ties in `flips` as their other
    neighbour; rows_err(logits) -> per position, max |compiled - reference|
    (NaN where the compiled run returned no logits). A tie at position p
    changes rows >= p, and the rows before the next tie's position depend
    on no other undecided tie: a tie is kept flipped when that lowers the
    error of those rows (or of the first observed row past them). Returns
    (logits, cache, flips) of the final run; no search when the plain run
    is within atol."""
    cache, logits = run(frozenset())
    err = rows_err(logits)
    if np.nanmax(err) <= atol:
        return logits, cache, frozenset()
    # Keys are (layer, position, kind, column): by position, then as the
    # model computes them. Not set order: a key holds a str, whose hash
    # (and so the greedy search's order, and its result) changed from one
    # interpreter to the next.
    ties = sorted({key for key, _ in cache.ties}, key=lambda k: (k[1], k))
    positions = sorted({k[1] for k in ties})
    observed = np.flatnonzero(~np.isnan(err))
    flips = frozenset()
    for key in ties:
        pos = key[1]
        later = [p for p in positions if p > pos]
        end = later[0] if later else len(err)
        seen = observed[observed >= pos]
        if not len(seen):
            continue
        end = max(end, int(seen[0]) + 1)
        c2, l2 = run(flips | {key})
        e2 = rows_err(l2)
        if np.nanmax(e2[pos:end]) < np.nanmax(err[pos:end]):
            flips, cache, logits, err = flips | {key}, c2, l2, e2
    return logits, cache, flips
