"""Rounding ties: values that f32 and float64 arithmetic round apart.

Two places round a value the compiled model computes in f32 to a narrower
type, and the reference (float64) must round the same value the same way:
  - a bf16 or fp8 latent cache stores each new latent / rope-key value
    rounded to its element type;
  - a GEMM on the CPU's bf16 units (AVX512-BF16, AMX; FP8 weights looked
    up as bf16 on avx512vbmi) rounds its input activations to bf16.
The two computations differ by ~1e-7 relative (more after a few layers:
f32 sums' error grows with their terms), which is harmless everywhere
except where the float64 value lies that close to a rounding boundary (a
bf16 midpoint, an e4m3 midpoint of x / scale). There the two round to
different neighbours, and the rounded values differ by a whole ulp (0.4%
for bf16). Measured:
  - tiny_v3 with a bf16 cache: one value 4.3e-7 from a midpoint moved the
    logits by 1.6e-3 while the rest agreed to 2e-6;
  - ragged_v3 with FP8 weights on avx512vbmi and AMX, seed 5: one
    layer-0 down_proj input 8.5e-8 from a midpoint moved its row's logits
    by 6.6e-3, the other rows agreeing to 8e-7; at seed 0 four ties (1.6e-9
    to 2e-6 from a midpoint) moved 26 of 28 rows by 1e-2, a layer-0 input
    its own row and, through the cache, the later ones.
Neither rounding is wrong; f32 cannot decide it.

So the reference lists such ties (values within `window`, relative, of a
boundary: wider than f32 noise, narrow enough that most values are not
ties) in a TieBook, and a parity check may store any of them as its other
neighbour (resolve_ties). Everything else, more than 99% of the values,
must still round exactly as the reference does, so a cache write that
truncates or scales wrongly, or a GEMM that reads a wrong block scale or
a swapped tile, still fails: a tie moves one value by one ulp.
"""
import numpy as np


def find_ties(x, stored, store, window, scale=None):
    """(row, column, other value) for each value of x [t, n] whose stored
    form changes within x +- window * scale; `store` maps an array to its
    stored values elementwise (for fp8: with the row's scales fixed).
    scale: |x| by default (a relative window)."""
    margin = window * (np.abs(x) if scale is None else scale)
    up, down = store(x + margin), store(x - margin)
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


class TieBook:
    """One reference run's ties and the ones it stores as their other
    neighbour. Keys are (layer, position, kind, column): kind "c" / "k" for
    the cache's latent / rope key, else the GEMM input's site
    (reference.input_site). distance[key]: how far the value lies from
    the boundary between its two neighbours, relative to it (the nearer,
    the likelier f32 rounded it the other way). local: the keys whose
    value moves its own row only (no cache a later row reads takes it)."""

    def __init__(self, flips=frozenset()):
        self.flips, self.ties, self.distance = frozenset(flips), [], {}
        self.local = set()

    def round(self, x, stored, store, window, key_of, floor=0.0, local=False):
        """stored (x rounded by `store`) with the ties among x's values
        within `window` recorded under key_of(row, column), and those in
        flips replaced by their other neighbour (in place). The window is
        relative to each value, or to `floor` times its row's RMS where that
        is larger: f32's error on a value follows the size of the terms it
        was summed from more than its own, so a value much smaller than its
        row's others may lie relatively farther from a boundary and still
        round the other way. local: x moves its own row only."""
        if window > 0:
            scale = np.abs(x)
            if floor > 0:
                rms = np.sqrt(np.mean(np.square(x), axis=1, keepdims=True))
                scale = np.maximum(scale, floor * rms)
            for t, j, other in find_ties(x, stored, store, window, scale):
                key = key_of(t, j)
                self.ties.append((key, other))
                boundary = (stored[t, j] + other) / 2
                self.distance[key] = abs(x[t, j] - boundary) / max(scale[t, j], 1e-300)
                if local:
                    self.local.add(key)
                if key in self.flips:
                    stored[t, j] = other
        return stored


# Rounds of the search. Each measures the effects of the latest run's
# ties, so a tie that a kept flip brought near a boundary (or moved away
# from one) is measured in the next.
ROUNDS = 8
# A flip taken explains at least this share of the squared error of the
# rows up to the one it is taken for (a third with three flips there)...
EXPLAINS = 0.2
# ...and the error's component along its effect d is about d: e.d / d.d
# within these bounds, about 1 for a tie the compiled run rounded the
# other way (0 for one it did not). Far above 1, a small d lines up with a
# larger error that another tie explains.
SHARE = (0.7, 1.4)
# Ties whose gains on the rows so far differ by less than this share of
# their squared error explain them equally well (_best).
TIED = 0.02
# Logits per row the search weighs: a tie's effect spreads over every
# logit (through lm_head), so a fixed sample of a large vocabulary's
# columns measures it as well, and a round's effects stay small (DeepSeek
# V3's 129280 columns would take 29 MB a tie over 28 rows).
SAMPLE_COLUMNS = 2048


def tie_order(state):
    """A run's tie keys in the order resolve_ties tries them. Keys are
    (layer, position, kind, column): by position, then nearest the
    boundary first, then layer, kind and column. Not set order: a key holds
    a str, whose hash (and so the search's order, and its result) changed
    from one interpreter to the next."""
    distance = getattr(state, "distance", {})
    return sorted({key for key, _ in state.ties},
                  key=lambda k: (k[1], distance.get(k, 0.0), k))


class _Effects:
    """The effects of one run's ties, each measured on first use: d, the
    change of the reference's logits (the sampled columns) when the tie
    alone is flipped on top of the run's flips; None where no logit moves
    past `floor` (the tie cannot matter)."""

    def __init__(self, run, flips, logits, observed, cols, floor):
        self.run, self.flips, self.logits = run, flips, logits
        self.observed, self.cols, self.floor = observed, cols, floor
        self.measured = {}

    def __call__(self, key):
        if key not in self.measured:
            _, moved = self.run(self.flips | {key})
            d = np.where(self.observed, moved - self.logits, 0.0)[:, self.cols]
            self.measured[key] = (d.astype(np.float32) if np.abs(d).max() > self.floor
                                  else None)
        return self.measured[key]


def _best(keys, effect, e, r):
    """Of `keys`, the tie that best explains e's rows before r: of those
    that explain them (their squared error lowered by EXPLAINS of it,
    e.d / d.d within SHARE), the ones within TIED of the largest such
    gain, and of these the one of the largest gain over all rows
    (2 e.d - d.d). Two ties can move the rows so far alike, a value at a
    row's attention input and a latent an earlier row stored that it
    reads, and only one of them moves the later rows as the compiled run's
    tie did; but the later rows' own errors make that gain noisy, so it
    only decides between ties that explain the rows so far equally well.
    (None, 0) if none explains them, else (key, its gain over all rows)."""
    here = np.sum(e[:r] ** 2)
    found = []
    for key in keys:
        d = effect(key)
        if d is None:
            continue
        dd = np.sum(np.square(d[:r], dtype=np.float64))
        if dd == 0:
            continue
        share = np.sum(e[:r] * d[:r]) / dd
        local = (2 * share - 1) * dd
        if SHARE[0] <= share <= SHARE[1] and local > EXPLAINS * here:
            found.append((local, key, d))
    if not found:
        return None, 0.0
    top = max(f[0] for f in found)
    best, gain = None, -np.inf
    for local, key, d in found:
        if local < top - TIED * here:
            continue
        g = 2 * np.sum(e * d) - np.sum(np.square(d, dtype=np.float64))
        if g > gain:
            best, gain = key, g
    return best, gain


def _explain_rows(ties, effect, e, target, atol, local=frozenset()):
    """Flips that explain e's rows in order (greedy least squares over the
    ties' effects, effect(key)): for the first row past target / 4, the
    tie that best explains the rows up to it (_best), its effect subtracted
    from e, until that row is within target / 4, then the next such row.
    A row's own ties are weighed first (most rows are explained by one).
    Where none explains a row past atol / 4, or the one that does would
    raise the error of all rows (a layer-0 input of the row that moves it
    as a latent an earlier row stored does, but the later rows otherwise),
    those of every position up to it are: a cache value an earlier row
    stored, or an early layer's input there, that reaches this row through
    the cache (not one in `local`). Unless flips were taken before it: then
    the round ends, as the tie may be one that those flips moved near a
    boundary, which only the next round's run lists. A row nothing
    explains is passed over while within atol (f32's own noise, 1e-7 to
    4e-6 a logit, or a tie too small to matter) and ends the round past
    it: the rows after it may carry its error on through the cache, which
    their own ties would only seem to explain."""
    taken, row = [], 0
    while True:
        rows = np.flatnonzero(np.abs(e[row:]).max(axis=1) > target / 4)
        if not len(rows):
            break
        row += int(rows[0])
        left = [k for k in ties if k[1] <= row and k not in taken]
        key, gain = _best([k for k in left if k[1] == row], effect, e, row + 1)
        worst = np.abs(e[row]).max()
        if (key is None or gain <= 0) and worst > atol / 4:
            if taken:  # the tie may be one those flips moved: a new round
                break
            key, _ = _best([k for k in left if k[1] == row or k not in local], effect, e,
                           row + 1)
        if key is None:
            if worst > atol:
                break
            row += 1
            continue
        taken.append(key)
        e = e - effect(key)
    return taken


def resolve_ties(run, compiled, atol, target=None):
    """The flips of ties that explain `compiled`, the compiled model's
    logits [positions, vocab] (NaN rows where it returned none): run(flips)
    -> (state, logits) runs the reference with the ties in `flips` rounded
    the other way (state: its TieBook, or anything with the book's `ties`;
    `distance` and `local` optional).

    A tie at position p moves row p and, through the cache, later rows;
    never earlier ones. A round explains the rows in order (_explain_rows)
    by each tie's effect d on the reference's logits, measured by running
    the tie alone (on first use: most rows need only their own ties
    measured): with e = compiled - reference, flipping a tie lowers the
    squared error by 2 e.d - d.d, about d.d for a tie the compiled run
    rounded the other way, while one it did not raises it by about as
    much, the other ties' effects adding only their chance alignment with d
    over the logits of a row. The run with the taken flips (or the first
    of them) is kept if it lowers the error; the next round measures its
    ties again (a flip moves the values after it, and with them which lie
    near a boundary). The search goes on while a row is past target / 4
    (target: atol unless tighter). Returns (logits, state, flips) of the final run; no search
    when the plain run is within target."""
    target = atol if target is None else min(target, atol)
    observed = ~np.isnan(compiled)
    cols = np.arange(compiled.shape[1])
    if len(cols) > SAMPLE_COLUMNS:
        cols = np.sort(np.random.default_rng(0).choice(cols, SAMPLE_COLUMNS, replace=False))

    def residual(logits):
        return np.where(observed, compiled - logits, 0.0)
    state, logits = run(frozenset())
    if np.abs(residual(logits)).max() <= target:
        return logits, state, frozenset()
    flips = frozenset()
    for _ in range(ROUNDS):
        e = residual(logits)
        ties = [k for k in tie_order(state) if k not in flips]
        effect = _Effects(run, flips, logits, observed, cols, target / 4)
        taken = _explain_rows(ties, effect, e[:, cols], target, atol,
                              getattr(state, "local", frozenset()))
        # The run with the taken flips, or failing that (their effects
        # measured apart need not add up) with the longest run of the first
        # of them that lowers the error.
        kept = None
        for n in range(len(taken), 0, -1):
            s2, l2 = run(flips | set(taken[:n]))
            if np.sum(residual(l2) ** 2) < np.sum(e ** 2):
                kept = (flips | set(taken[:n]), s2, l2)
                break
        if kept is None:
            break
        flips, state, logits = kept
    return logits, state, flips
