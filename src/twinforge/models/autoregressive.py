"""Any-order autoregressive synthesizer over tokenised columns: twinforge's default model (``"auto"``).

A row is factorised column by column, ``p(x) = prod_k p(x_sigma(k) | x_sigma(<k))``, over one token per column:

- a categorical or boolean column: one token per level; levels seen only once, and past ``max_levels`` levels
  the rarest ones, share one "other" token, which on sampling draws one of its levels from their empirical
  frequencies (memory and time grow with ``max_levels``, not with the number of levels; a level never seen is never
  drawn; a key-like column of unique codes is not memorised row by row);
- a numeric or datetime column with few distinct values: one token per value (exact);
- any other numeric or datetime column: a *coarse* token, either one of its point masses (a value holding at
  least 1% of the rows, such as a frequent 0) or one of ``n_bins`` equal-mass quantile bins of the other values.
  Within a bin the value comes from the column's empirical quantile function on a grid of ``n_bins**2`` levels:
  one of the bin's ``n_bins`` fine quantile bins (equal mass by construction), then a uniform draw between its
  edges. Tied values make zero-width fine bins, so ties come back exactly. The fine bin is drawn from
  ``(alpha + beta*p)*u + gamma*u^2`` (``p``: the coarse bin's position, ``u``: the fine bin's), three numbers
  the trunk predicts per row (see ``_fine``): the form of a Gaussian in quantile space, so the value inside its
  bin follows the other columns instead of being drawn uniformly. A free fine token per column memorised the
  rows of small tables (validation loss rising from the second epoch, on 2,000 rows); three numbers do not.
  A binned column that is nearly a linear function of earlier columns (flights' arrival delay: the departure
  delay + a residual) instead draws its value inside the drawn bin from that residual, given their values, where
  this gives the training values a higher likelihood than the three numbers do (see ``_references``). So does
  an exact column of more than ``_REFERENCE_VALUES`` values, whose whole value then comes from the residual
  (weather's dew point given temperature and humidity; see ``_exact_from_reference``). A many-valued numeric
  column that is an exact linear function of one or two others (HHMM clock times read as minutes, modulo a day)
  is *derived*: computed from them after they are drawn (flights' departure time = schedule + delay; see
  ``_derivations``);
- a missing value: a token of its own.

Training is order-agnostic (Uria et al., "A deep and tractable density estimator", ICML 2014; Hoogeboom et al.,
"Autoregressive diffusion models", ICLR 2022, eq. 5; MOSTLY AI's TabularARGN, 2025): per row, draw a cut
``t ~ U{0..D-1}`` and an order ``sigma``; the first ``t`` columns of ``sigma`` are known and the network predicts
every unknown column's token from them. The loss is the mean cross-entropy over the unknown columns (ARDM's
``D/(D-t) * sum``, divided by the constant ``D``). For half of the rows ``sigma`` is the sampling order, for the
other half a random permutation: one network gives ``p(x_j | x_S)`` for any subset ``S`` of known columns (what
conditions, seed data and imputation need) while staying sharpest on the conditionals plain sampling uses.

The network (:class:`_Net`) is plain ``nn.Embedding`` + ``nn.Linear`` + ``nn.LayerNorm``, so that Opacus can
compute per-sample gradients: its input is the sum of one embedding per column (the token's if the column is
known, a learned "unknown" one otherwise) plus, for known numeric columns, the token's quantile position times a
learned vector (tokens are unordered; the position tells the network that neighbouring values are alike), and for
known binned columns the value's place inside its bin times another (without it a later column sees only the bin,
1/32 of the range; on ames it lowered detection AUC from 0.73 to 0.69 over 3 sampling seeds). A sum of
embeddings is a fused first linear layer over one-hot tokens, so sampling is incremental: drawing a column adds its
embedding (and place). An MLP trunk with LayerNorm follows, then one linear head with a slice of logits per column;
a numeric column's value tokens also get ``log q`` with ``q ~ exp(a*position + b*position^2)`` normalised over
them, a discretised Gaussian in quantile space whose two coefficients the trunk predicts (so that "the median
moves up with age" is learned from a few hundred rows); these coefficients, and the within-bin ones, are the
network's outputs times ``_SHAPE_SCALE`` (10), so that a sharp conditional is reachable in a few hundred steps.
Training early-stops on a held-out split, halving the
learning rate when the validation loss stalls.

After training, the one-column marginals of sampled rows are calibrated: small errors in each conditional
compound along the chain of columns (on ames, 74 columns, the first column's level shares drifted by 0.03 to
0.13 total variation from one seed to another), so six rounds of per-token logit biases
``b += log(p_real / p_sampled)`` (iterative proportional fitting, as in survey raking) make them match the data.
The biases are part of the model and apply to every draw.

Sampling draws the columns in a fixed order, the constrained ones (sets, ranges) first. Columns that are
nearly independent given the ones before them share one trunk pass (``_group_columns``: ARDM's parallel steps,
chosen by a dynamic programme over the model's own conditional mutual information, at most ``_MAX_PASSES``
(16) of them); on ames, 74 columns take 16 passes. Each column costs a draw from
``softmax(logits / temperature)`` times the share of each token's mass that the condition allows (0 or 1 for a
level or a value, the in-range share of a bin), renormalised: conditions hold exactly, without rejection
sampling. With several constrained columns, each is drawn given the known columns and the constrained ones
drawn before it (the usual sequential approximation of the joint conditional). Sampling runs the trunk in
bfloat16 where the CPU has it natively. Fitting uses one CPU thread (see
_cpu_threads); sampling draws blocks of ``_SAMPLE_BATCH`` rows on ``workers`` threads, one CPU thread each, every
block from its own generator seeded by (the draw's seed, the block's number), so that the rows do not depend on
the number of threads (see ``_sample``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from twinforge.errors import ParameterError
from twinforge.models._nn import (
    MLP,
    check_training_params,
    resolve_device,
    seeded,
    state_from_arrays,
    state_to_arrays,
    train_loop,
    training_precision,
)
from twinforge.models._registry import register
from twinforge.models._request import SampleRequest
from twinforge.models._tabular_nn import written_decimals
from twinforge.models.base import Synthesizer
from twinforge.privacy import dp_sgd, is_private, public_arrays

_MIN_LEVEL_COUNT = 2  # a categorical level seen fewer times shares the "other" token (see _plan)
_MAX_EXACT = 128  # numeric columns with at most this many distinct values get one token per value
_MASS_SHARE = 0.01  # a value holding at least this share of a binned column's rows is a point mass
_MAX_MASSES = 32
_GRID = 65  # quantiles kept per numeric column to place a value on [-1, 1] (its ordinal input feature)
_MIN_VALIDATION = 20  # rows held out for early stopping at least (see _train)
_MIN_EPOCH_ROWS = 4096  # rows per epoch at least (several passes over a small table)
# The network's width (see _auto_width): 64 below _MIN_ROWS rows or _ROWS_PER_TOKEN training rows per token,
# else 128
_MIN_ROWS = 1_000
_ROWS_PER_TOKEN = 2
# Sampling: rows per pass, and one trunk pass per distinct prefix of drawn tokens while there are at most
# rows / _DISTINCT_SHARE of them. On churn (CPU time, one thread): 4,096 and 4 gave 147,000 rows/s, 16,384 and 2
# 175,000 to 204,000 (8,192 or 32,768 rows, shares 1.5 or 4: slower).
_DISTINCT_SHARE = 2
# Below this many tokens a draw counts the cumulative sums under its uniform instead of a binary search (16,384
# rows, one thread: 5 tokens 0.09 against 0.16 ms, 33 tokens 0.40 against 0.39 ms)
_SEARCH_TOKENS = 16
_SAMPLE_BATCH = 16_384
# Rows of a pass over distinct prefixes are padded to a multiple of this (see _sample_rows)
_SHARED_ROWS = 256
# At most this many logits (rows x tokens) of a unit's head product get their calibration in one float32 copy (see
# _group_linear): ames' largest unit, 345 tokens, is 5.7 million at 16,384 rows
_FUSED_LOGITS = 8_388_608
# Logits per chunk when a column's draws go through in chunks of rows (see _finish_draw); only columns of more
# logits than this are chunked: at 262,144 or 1,048,576, flights and ames gained 5-10% but covid lost about 5%
_DRAW_CHUNK = 2_097_152
# A unit's columns of at most this many tokens (no ordinal term, no relations to hold) are drawn together, in one
# token-major product (see _fused_draws)
_FUSED_TOKENS = 64
# Rows per chunk through the trunk when sampling: a chunk's activations stay in the cache between the layers
# (LayerNorm-SiLU-Linear-LayerNorm-SiLU at width 256 in bfloat16, one thread: 14.9 ms per 16,384 rows at once,
# 12.3 ms in chunks of 2,048; 13.3 ms in chunks of 512)
_TRUNK_CHUNK = 2_048
# Share of training rows whose known columns are a prefix of the sampling order rather than a random subset.
# Plain sampling only asks for those conditionals; on churn, 0.5 raised column shapes (an SDMetrics-like score)
# from 0.94 to 0.98 against all-random orders, which spread the capacity over all 2^D subsets.
_FIXED_ORDER_SHARE = 0.5
_PLATEAU = 2  # epochs without a better validation loss before the learning rate is halved
_DROPOUT = 0.0  # trunk dropout; 0.2 did not help on ames (measured with 3 seeds)
_WEIGHT_DECAY = 1e-5  # AdamW's
# Marginal calibration: rows sampled per round (10 per training row, at most this), and rounds. On weather (1,781
# rows) 2,000 rows and 3 rounds left the dew point's marginal 0.020 (KS) off the data's, from sampling noise and
# unfinished iterations; 17,810 rows and 6 rounds 0.010.
_CALIBRATION_ROWS = 20_000
_CALIBRATION_ROUNDS = 6
# Grouping columns into trunk passes (see _group_columns): rows sampled to measure the cost of a grouping, and
# what one pass is worth in nats per row.
_GROUPING_ROWS = 2_000
_PASS_COST = 0.01
# Most trunk passes per row: a wide table's columns share passes beyond this many (see _group_columns)
_MAX_PASSES = 16
_MAX_BIAS = 5.0
# The ordinal and within-bin shape coefficients are the network's outputs times this. A sharp conditional (weather's
# dew point given temperature and humidity) needs coefficients in the hundreds, which plain outputs reach only after
# many more steps than early stopping allows: at 1, TSTR/TRTR on weather was 0.95, at 10 0.97 (scales 10 and 30
# alike, session 15). Session 18: 30 raised TSTR/TRTR on a split of the bench's training rows (weather 0.955 ->
# 0.961 over fit seeds 0-2, churn 0.970 -> 0.985), but on the benchmark it cost default's pair trends 0.958 -> 0.907
# (quality 0.9725 -> 0.9471), churn's quality 0.978 -> 0.972 and 50% more training on flights: kept at 10.
_SHAPE_SCALE = 10.0
# Under DP-SGD the scale stays 1: it multiplies the gradients that per-sample clipping bounds, so at 10 the clip
# (and the noise scaled to it) crushes what the rest of the network learns. Churn, central fit at epsilon 3, pair
# trends on seeds 0/1: 0.818/0.916 at 1 against 0.746/0.812 at 10; column shapes alike.
_DP_SHAPE_SCALE = 1.0
# Within-bin values relative to a reference column (see _references): a binned column whose values are an earlier
# numeric column's times a slope plus a residual with at most this share of its own spread (standard deviations)
# draws its value inside the drawn bin from that residual; the residual's quantiles kept to do so.
_REFERENCE_SPREAD = 0.5
_RESIDUAL_GRID = 257
_REFERENCE_ROWS = 20_000
_MAX_REFERENCES = 3
# an exact (one token per value) numeric column of more than this many values may draw from references too
_REFERENCE_VALUES = 32
# Derived columns (see _derivations): the least share of rows on which a relation must hold exactly; rows on which
# candidate relations are screened; distinct values past 100 that make a column of HHMM clock times (see _is_clock).
# 0.98 (0.99 until session 24): ames' living area is the first plus the second floor's on 98.8% of rows (the rest
# add a low-quality area, not a column); drawn by the network with references it held on 0.5% of sampled rows (gap
# spread 327 square feet, data 49). Derived: TSTR/TRTR for the sale price on a split of the bench's training rows,
# fit seeds 0-2 x 3 sampling seeds, 0.913 0.939 0.935 -> 0.935 0.943 0.934 (see ar_session24.md). No other bench
# table has a relation between 0.98 and 0.99.
_DERIVE_SHARE = 0.98
# the share a candidate needs on the screen rows: on 500 rows, a relation with 2% exceptions shows more than 4%
# (20 rows) by chance about one time in 700 (3.2 standard deviations)
_SCREEN_SHARE = 0.96
# a derived column is missing where an input is when the data's is on at least this share of such rows
_MISSING_OPEN = 0.99
_EXACT_SCREEN_ROWS = 500
_PAIR_R2 = 0.5  # the least multiple R^2 of a pair of inputs screened for an exact relation (see _linear_pairs)
_CLOCK_VALUES = 20
# Redraws of a derived column's first input, where its value is fixed, until the other input computed from them
# can hold the relation (see _hold_relations)
_SOLVE_TRIES = 32
_DAY_MINUTES = 1440.0
_REFERENCE_TEST_ROWS = 2_000  # rows on which the residual's and the network's within-bin likelihoods are compared
# Sampling order: binned columns, and numeric columns with more tokens than this, go last, ordered by how well the
# other numeric columns predict them (see _sampling_order)
# Off by default: on a split of the bench's training rows it raised weather's TSTR/TRTR (0.957 / 0.951 -> 0.962 /
# 0.965, fit seeds 0 / 1; 0.938 on seed 2), but the benchmark's own fits scored lower with it (weather 0.96 ->
# 0.923, ames 0.945 -> 0.917, one draw each): no clear gain, so the token order stays (see auto_supplement.md)
_ORDER_TOKENS = 32
_ORDER_BY_PREDICTABILITY = False
_BF16_TRAINING = True  # bfloat16 autocast for training steps where the CPU has it natively (see training_precision)


@register("auto")
class Autoregressive(Synthesizer):
    """Any-order autoregressive model over tokenised columns; conditions on any subset of columns.

    Parameters
    ----------
    seed : int, optional
        Seed for fitting and sampling; same seed and data give the same model and samples.
    epochs : int, default 200
        Most epochs (passes over the data, several for a small table); early stopping usually ends sooner.
    batch_size : int, optional
        Rows per training step; by default it grows with the table (32 to 1024).
    learning_rate : float, default 2e-3
        AdamW learning rate, halved whenever the validation loss stalls for 2 epochs.
    width : int, optional
        Embedding and hidden width; by default 128, or 64 below 1,000 rows or below two rows per token (a
        table whose rows are too few for its tokens' weights, such as a wide table of few rows).
    depth : int, default 2
        Hidden layers, counting the embedding sum as the first.
    trunk : {"layernorm", "plain"}, default "layernorm"
        The hidden layers: LayerNorm and SiLU, or ReLU without normalisation (cheaper to sample). With
        ``depth=1`` and ``"plain"``, sampling skips the hidden layer's matrix product: on ames (74 columns)
        1.7x the rows per CPU second at the same quality; on flights 1.6x too, but a lower TSTR (see README).
    n_bins : int, default 32
        Coarse quantile bins per numeric column, each split into ``n_bins`` fine ones.
    max_levels : int, default 500
        Most tokens per categorical column; rarer levels share one token drawn by their frequencies.
    patience : int, default 8
        Epochs without a better validation loss before training stops.
    validation_share : float, default 0.1
        Share of rows held out for early stopping (0: train on all rows for ``epochs`` epochs).
    max_minutes : float, optional
        Wall-clock budget for training; the best weights so far are kept.
    device : str, default "auto"
        ``"auto"`` (a GPU if present), ``"cpu"`` or ``"cuda[:N]"``.
    progress : bool, default True
        Show a progress bar with the losses on stderr while fitting.
    epsilon : float, optional
        Train with differential privacy at this budget (DP-SGD; see :mod:`twinforge.privacy`); None: no DP.
        Under DP, early stopping is off, and the token plan and marginal calibration use the DP public table.
    delta : float, optional
        The DP delta; by default ``min(1e-5, 0.1 / n)``. Must be below ``1 / n``.

    Examples
    --------
    >>> import twinforge
    >>> real = twinforge.load_demo().head(500)
    >>> model = twinforge.create("auto", seed=0, epochs=2, progress=False).fit(real)
    >>> model.sample(3).shape
    (3, 20)
    >>> rows = model.sample(4, conditions={"contract": "One year", "tenure": (12, 24)})
    >>> rows["contract"].tolist(), bool(rows["tenure"].between(12, 24).all())
    (['One year', 'One year', 'One year', 'One year'], True)
    """

    summary = "any-order autoregressive network; conditions on any columns, rebalances, imputes (default)"
    supports_conditions = True
    parallel_sampling = True

    def __init__(
        self,
        *,
        seed: int | None = None,
        epochs: int = 200,
        batch_size: int | None = None,
        learning_rate: float = 2e-3,
        width: int | None = None,
        depth: int = 2,
        trunk: str = "layernorm",
        n_bins: int = 32,
        max_levels: int = 500,
        patience: int = 8,
        validation_share: float = 0.1,
        max_minutes: float | None = None,
        device: str = "auto",
        progress: bool = True,
        epsilon: float | None = None,
        delta: float | None = None,
    ):
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.width = width
        self.depth = depth
        self.trunk = trunk
        self.n_bins = n_bins
        self.max_levels = max_levels
        self.patience = patience
        self.validation_share = validation_share
        self.max_minutes = max_minutes
        self.device = device
        self.progress = progress
        self.epsilon = epsilon
        self.delta = delta

    def _check_params(self) -> None:
        check_training_params(
            epochs=self.epochs,
            batch_size=1 if self.batch_size is None else self.batch_size,
            max_minutes=self.max_minutes,
            patience=self.patience,
            validation_share=self.validation_share,
        )
        for name, low in (("width", 4), ("depth", 1), ("n_bins", 2), ("max_levels", 1)):
            v = getattr(self, name)
            if name == "width" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {v!r}")
        if self.trunk not in ("layernorm", "plain"):
            raise ParameterError(f'trunk must be "layernorm" or "plain", got {self.trunk!r}')
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ParameterError(f"learning_rate must be a number in (0, 1), got {lr!r}")
        resolve_device(self.device)

    # ------------------------------------------------------------------------------------ fit
    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        public = public_arrays(self, arrays)  # under DP: the public table, never the rows themselves
        self.columns_ = [
            _plan(name, a, self.transformer_.transforms_[name], self.n_bins, self.max_levels)
            for name, a in public.items()
        ]
        n = len(next(iter(arrays.values()))) if arrays else 0
        self.config_ = {
            "width": int(self.width or _auto_width(n, sum(_n_tokens(col) for col in self.columns_))),
            "depth": int(self.depth),
            "shape_scale": _DP_SHAPE_SCALE if is_private(self) else _SHAPE_SCALE,
            "trunk": self.trunk,
        }
        self.order_ = _sampling_order(self.columns_, public)
        if not is_private(self):  # under DP, finding the relations would look at the rows
            _derivations(self.columns_, arrays)
            self.order_ = _derived_last(self.columns_, self.order_)
        self.train_info_: dict[str, Any] = {}
        self._build_layout()
        device = resolve_device(self.device)
        with seeded(rng, device) as gen, _cpu_threads(device):
            self.net_ = self._new_net().to(device)
            if self.columns_:  # a table of only ids, text and PII has nothing to learn
                tokens = _training_matrix(self.columns_, arrays, rng)
                result, held_out = self._train(torch.as_tensor(tokens), gen, device, rng)
                self.train_info_ = result.to_dict()
                dp = getattr(self, "_dp", None)
                if dp is not None:
                    self.train_info_["dp_sgd"] = dp.finish()
                    del self._dp
        self.net_.eval()
        self._bf16_net = None
        if self.columns_ and not is_private(self):  # under DP, choosing them would look at the rows again
            self._choose_references(tokens, arrays, held_out, rng)
        self.bias_ = [np.zeros(_n_tokens(col), dtype="float32") for col in self.columns_]
        self.groups_ = [[i] for i in self.order_]
        if self.columns_:
            self._group_columns(rng)
            if is_private(self):  # calibrate to the DP one-column marginals
                tokens = np.column_stack([_encode(col, public[col["column"]], rng) for col in self.columns_])
            self._calibrate(tokens, rng)

    def _choose_references(
        self, tokens: np.ndarray, arrays: dict[str, np.ndarray], held: np.ndarray, rng: np.random.Generator
    ) -> None:
        """Give binned columns their references (see ``_references``), judged on rows neither side was fitted on.

        The residuals are fitted on the training rows only, then each column keeps its references only where its
        residual gives held-out rows' fine bins a higher likelihood than the network's within-bin shape, each given
        the columns before it in the sampling order: the validation rows that training held out (at most
        ``_REFERENCE_TEST_ROWS``), or, without a validation split, a fifth of the rows (the network is then
        scored on rows it saw, which can only favour it). On the fitting rows themselves the residual's quantiles
        and slope restate those rows' own residuals, which flatters small tables: on 300 rows where four shared
        outliers make two independent columns look linear, scoring on the fitting rows kept the reference for
        2 of 3 data seeds, these held-out rows for none. A reference is kept only on clear evidence: a mean gain
        over the network of two standard errors.

        A linear fit on one column can know less than the network, which sees every earlier column (airports'
        longitude given the time zone: 3.80 nats per held-out row against the network's 3.43). The other way, on
        flights the network had looked better than the hour's residual for the scheduled departure time when
        scored on its own training rows; on held-out rows the residual wins (2.68 against 3.18).
        """
        n = len(tokens)
        if len(held) < _MIN_VALIDATION:
            if n // 5 < _MIN_VALIDATION:
                return  # too few rows to judge a reference by
            held = rng.choice(n, n // 5, replace=False)
        fitting = np.setdiff1d(np.arange(n), held)
        _references(self.columns_, {name: a[fitting] for name, a in arrays.items()}, self.order_)
        chosen = [j for j, col in enumerate(self.columns_) if "reference" in col]
        if not chosen:
            return
        d = len(self.columns_)
        # every held-out row up to _REFERENCE_TEST_ROWS, without a draw: a table whose candidates all fail then
        # fits exactly the model it would fit without candidates
        pick = np.sort(held if len(held) <= _REFERENCE_TEST_ROWS else rng.choice(held, _REFERENCE_TEST_ROWS, False))
        device = next(self.net_.parameters()).device
        sub = torch.as_tensor(tokens[pick], device=device)
        lay = {k: v.to(device) for k, v in self.layout_.items()}
        rank = np.argsort(self.order_)
        values = {col["column"]: np.asarray(arrays[col["column"]], dtype="float64")[pick] for col in self.columns_}
        for j in chosen:
            col = self.columns_[j]
            known = torch.as_tensor(rank < rank[j], device=device)[None, :].expand(len(sub), -1)
            exact = col["type"] == "exact"  # its whole token from the residual, else the place inside its bin
            with torch.inference_mode(), _cpu_threads(device):
                network = _column_nll(net=self.net_, lay=lay, tokens=sub, known=known, within_only=not exact)
            network = network[:, j if exact else int(self.numeric_index_[j])].float().cpu().numpy()
            residual = _residual_nll(col, tokens[pick, j], tokens[pick, d + int(self.numeric_index_[j])],
                                     _reference_shift(col, values))  # fmt: skip
            scored = ~np.isnan(network) & ~np.isnan(residual)
            gain = network[scored] - residual[scored]  # nats per row the residual saves
            # kept on clear evidence only: on a few dozen held-out rows, one tail row decides a plain comparison of
            # means either way. Either the mean gain is two standard errors above 0, or it is above 0 and the
            # residual wins on more rows than a fair coin would two standard errors out (a sign test, which tail
            # rows cannot sway: y = 3x + noise on 600 rows, where a sharper network, shape scale 30, loses by 2.3
            # nats per row on average but by many on a few rows, so that the mean fell 0.1 short of 2 SE)
            n_gain = len(gain)
            clear = n_gain >= _MIN_VALIDATION and (
                gain.mean() > 2 * gain.std() / math.sqrt(n_gain)
                or (gain.mean() > 0 and (gain > 0).mean() > 0.5 + 1 / math.sqrt(n_gain))
            )
            if not clear:
                for key in ("reference", "slope", "residuals"):
                    del col[key]

    def _calibrate(self, tokens: np.ndarray, rng: np.random.Generator) -> None:
        """Per-token logit biases that make sampled marginals match the training marginals.

        A small error in each conditional compounds along the chain of columns: on ames (74 columns), the share
        of the first column's levels drifted by 0.03 to 0.13 (total variation) from one seed to another. A few
        rounds of ``bias += log(p_real / p_sampled)`` over ``_CALIBRATION_ROWS`` sampled rows remove that drift
        (iterative proportional fitting of the one-column marginals, as in raking) without touching the network.
        """
        n = len(tokens)
        m = int(np.clip(10 * n, 2_000, _CALIBRATION_ROWS))  # sampling noise well below the data's own
        real = [np.bincount(tokens[:, i], minlength=len(b)) / n for i, b in enumerate(self.bias_)]
        for _ in range(_CALIBRATION_ROUNDS):
            drawn: dict[int, np.ndarray] = {}
            self._sample(m, rng, tokens_out=drawn)
            for i, b in enumerate(self.bias_):
                if "derive" in self.columns_[i]:
                    continue  # its values follow from other columns' (see _derive_values), not from its tokens
                synthetic = np.bincount(drawn[i], minlength=len(b)) / m
                step = np.log((real[i] + 1 / m) / (synthetic + 1 / m))
                self.bias_[i] = np.clip(b + step, -_MAX_BIAS, _MAX_BIAS).astype("float32")

    def _train(self, tokens: torch.Tensor, gen: torch.Generator, device: torch.device, rng: np.random.Generator):
        """Fit ``net_`` on ``tokens`` [rows, columns], optionally followed by one within-bin place code per numeric
        column (see ``_encode``, -1: none; without them the within-bin shape is not trained: uniform).

        Returns the training loop's result and the indices of the validation rows it held out.
        """
        n = len(tokens)
        perm = torch.randperm(n, generator=gen)
        # a small table still holds out a few rows (up to 20, a fifth at most): without them, training would run
        # every epoch and memorise the table
        n_val = max(round(n * self.validation_share), min(_MIN_VALIDATION, n // 5)) if self.validation_share else 0
        if n_val < 5 or is_private(self):  # DP: no data-dependent early stopping
            n_val = 0
        val, train = tokens[perm[:n_val]].to(device), tokens[perm[n_val:]].to(device)
        val_known = self._random_known(n_val, gen).to(device)
        batch = self.batch_size or int(np.clip(2 ** round(math.log2(max(len(train) / 16, 1))), 32, 1024))
        lay = {k: v.to(device) for k, v in self.layout_.items()}
        net = self.net_
        opt = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=_WEIGHT_DECAY)
        # halving the step size when the validation loss stalls removes most of the any-order objective's noise
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=_PLATEAU)
        steps = -(-len(train) // batch)
        dp = self._dp = dp_sgd(self, n_rows=len(train), batch_size=batch, steps=steps * int(self.epochs), rng=rng)
        if dp is not None:
            opt = dp.make_private(net, opt)

        def epoch(_: int) -> dict[str, float]:
            net.train()
            # with early stopping, a small table gets several passes per epoch: enough steps to judge progress by
            passes = -(-_MIN_EPOCH_ROWS // len(train)) if n_val else 1
            order = torch.cat([torch.randperm(len(train), generator=gen) for _ in range(passes)])
            total, steps = 0.0, 0
            picks = (
                (order[s : s + batch] for s in range(0, len(order), batch))
                if dp is None
                else dp.epoch(-(-len(order) // batch))
            )
            for pick in picks:
                pick = pick.to(device)
                known = self._random_known(len(pick), gen).to(device)
                with training_precision(device, dp is None and _BF16_TRAINING):
                    loss = _loss(net, lay, train[pick], known).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, steps = total + float(loss.detach()), steps + 1
            return {"loss": total / max(steps, 1)}

        def validate() -> float:
            net.eval()
            with torch.no_grad():
                parts = [_loss(net, lay, val[s : s + 4096], val_known[s : s + 4096]) for s in range(0, n_val, 4096)]
            value = float(torch.cat(parts).mean())
            plateau.step(value)
            return value

        result = train_loop(
            module=net,
            epoch=epoch,
            validate=validate if n_val else None,
            epochs=self.epochs,
            patience=self.patience,
            max_minutes=self.max_minutes,
            progress=self.progress,
            description=f"fitting {self.name}",
            should_stop=dp.should_stop if dp is not None else None,
        )
        return result, perm[:n_val].numpy()  # and the rows the network never trained on (see _choose_references)

    def _random_known(self, b: int, gen: torch.Generator) -> torch.Tensor:
        """Per row: a cut t ~ U{0..D-1} and an order; the first t columns of the order are known.

        The order is the sampling order for a share of the rows (``_FIXED_ORDER_SHARE``), random for the others.
        """
        d = len(self.columns_)
        t = torch.randint(0, d, (b, 1), generator=gen)
        rank = torch.rand(b, d, generator=gen).argsort(1).argsort(1)
        fixed = torch.rand(b, 1, generator=gen) < _FIXED_ORDER_SHARE
        sampling_rank = torch.as_tensor(np.argsort(self.order_), dtype=torch.int64)
        rank = torch.where(fixed, sampling_rank[None, :], rank)
        return rank < t

    # ------------------------------------------------------------------------------------ layout
    def _build_layout(self) -> None:
        """Offsets of every column's tokens in the input embedding table and in the output logits."""
        n_tok = np.asarray([_n_tokens(col) for col in self.columns_], dtype="int64").reshape(-1)
        in_offset = np.concatenate([[0], np.cumsum(n_tok + 1)[:-1]]).astype("int64")
        numeric = [i for i, col in enumerate(self.columns_) if col["type"] != "discrete"]
        self.numeric_index_ = np.full(len(self.columns_), -1, dtype="int64")
        self.numeric_index_[numeric] = np.arange(len(numeric))
        positions = [_positions(col) for col in self.columns_]  # per column: its tokens', then 'unknown' (0)
        self.layout_ = {
            "n_tokens": torch.as_tensor(n_tok),
            "in_offset": torch.as_tensor(in_offset),
            "unknown": torch.as_tensor(in_offset + n_tok),  # each column's "unknown" embedding
            "out_offset": torch.as_tensor(np.concatenate([[0], np.cumsum(n_tok)[:-1]]).astype("int64")),
            "out_column": torch.as_tensor(np.repeat(np.arange(len(n_tok)), n_tok)),
            "numeric_column": torch.as_tensor(np.asarray(numeric, dtype="int64")),
            "position": torch.as_tensor(np.concatenate([np.zeros(0), *positions]).astype("float32")),
            "out_position": torch.as_tensor(
                np.concatenate([np.zeros(0)] + [p[:-1] for p in positions]).astype("float32")
            ),
            "out_numeric": torch.as_tensor(np.repeat(np.maximum(self.numeric_index_, 0), n_tok)),
            "out_ordinal": torch.as_tensor(np.concatenate([np.zeros(0, bool), *map(_ordinal, self.columns_)])),
            # per numeric column: its first bin token (after the point masses) and its bins (0: not binned)
            "bin_start": torch.as_tensor(
                np.asarray([len(self.columns_[i].get("masses", ())) for i in numeric], dtype="int64")
            ),
            "n_bins": torch.as_tensor(np.asarray([self.columns_[i].get("n_bins", 0) for i in numeric], dtype="int64")),
        }
        # the value tokens of numeric columns alone: where the shape term applies
        ordinal = self.layout_["out_ordinal"].numpy()
        self.layout_["ordinal_token"] = torch.as_tensor(np.flatnonzero(ordinal).astype("int64"))
        names = {col["column"]: i for i, col in enumerate(self.columns_)}
        derived = [i for i, col in enumerate(self.columns_) if "derive" in col]
        if derived:  # per derived column, its inputs (see _loss)
            inputs = np.zeros((len(self.columns_), len(self.columns_)), dtype="float32")
            for i in derived:
                inputs[i, [names[r] for r in self.columns_[i]["derive"]["reference"]]] = 1.0
            self.layout_["derive_inputs"] = torch.as_tensor(inputs)
            missing = [_n_tokens(col) - 1 if col["missing"] else -1 for col in self.columns_]
            self.layout_["missing_token"] = torch.as_tensor(np.asarray(missing, dtype="int64"))

    def _new_net(self) -> _Net:
        n_tok = self.layout_["n_tokens"]
        return _Net(
            n_in=max(int((n_tok + 1).sum()), 1),
            n_out=max(int(n_tok.sum()), 1),
            n_numeric=len(self.layout_["numeric_column"]),
            width=self.config_["width"],
            depth=self.config_["depth"],
            shape_scale=self.config_.get("shape_scale", 1.0),  # 1: a model saved before the scale existed
            # a config without it: a model saved before the choice existed (whose parameters then hold the default,
            # "layernorm"), or one set up by the federated adapter (which builds the config itself)
            trunk=self.config_.get("trunk", self.trunk),
        )

    # ------------------------------------------------------------------------------------ sample
    def _sample(
        self,
        n: int,
        rng: np.random.Generator,
        request: SampleRequest | None = None,
        tokens_out: dict[int, np.ndarray] | None = None,
        workers: int = 1,
    ) -> dict[str, np.ndarray]:
        """``n`` rows; ``tokens_out`` (unconditional sampling only) also collects each column's drawn tokens.

        The rows go in blocks of ``_SAMPLE_BATCH``, block ``b`` drawing from its own generator seeded by
        ``(rng's next number, b)``, over ``workers`` threads (torch's kernels release the GIL; each thread runs
        them on one intra-op thread): the rows are the same whatever ``workers`` is. At most ``workers`` blocks are in
        flight, so the working buffers grow with the threads, not with ``n``; a single block runs without a pool.
        Each block writes its rows straight into the output arrays (no per-block arrays kept for a final concatenate:
        half the memory of a large draw, one copy fewer).
        """
        if not self.columns_:
            return {}
        request = request if request is not None else SampleRequest(n=n)
        plans = [_column_request(col, request) for col in self.columns_]
        units = _relation_units(self.columns_, plans, self._passes(plans))
        device = next(self.net_.parameters()).device
        lay = {k: v.to(device) for k, v in self.layout_.items()}
        root = int(rng.integers(0, 2**63 - 1))
        blocks = [(start, min(start + _SAMPLE_BATCH, n)) for start in range(0, n, _SAMPLE_BATCH)]
        result = {col["column"]: np.empty(n, dtype="int64" if col["type"] == "discrete" else "float64")
                  for col in self.columns_}  # fmt: skip

        def block(b: int) -> dict[int, np.ndarray]:
            seed = int(np.random.SeedSequence(root, spawn_key=(b,)).generate_state(1, np.uint64)[0] >> 1)
            gen = torch.Generator().manual_seed(seed)
            drawn: dict[int, np.ndarray] = {}
            start, stop = blocks[b]
            out = {name: a[start:stop] for name, a in result.items()}
            with torch.inference_mode(), _cpu_threads(device):
                self._sample_rows(start, stop, plans, units, request.temperature, lay, deltas, heads, gen, drawn, out)
            return drawn

        with torch.inference_mode(), _cpu_threads(device):
            deltas = self._deltas(lay)
            heads = self._column_heads(lay, device)
            workers = min(workers, len(blocks))
            if workers <= 1:
                results = [block(b) for b in range(len(blocks))]
            else:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                    results = list(pool.map(block, range(len(blocks))))
        if tokens_out is not None:
            for i in results[0] if results else ():
                tokens_out[i] = np.concatenate([drawn[i] for drawn in results])
        return result

    def _sample_rows(
        self,
        start: int,
        stop: int,
        plans: list[dict[str, Any]],
        units: list[list[int]],
        temperature: float,
        lay: dict[str, torch.Tensor],
        deltas: list[torch.Tensor],
        heads: list[_ColumnHead],
        gen: torch.Generator,
        drawn: dict[int, np.ndarray],
        out: dict[str, np.ndarray],
    ) -> None:
        """Rows ``start:stop`` into ``out`` (per column, an array of ``stop - start`` values, written in place):
        given values first, then per unit of ``units`` one trunk pass and one draw per column.

        ``drawn`` receives each column's drawn tokens (for its free rows).
        """
        net, m = self.net_, stop - start
        device = net.embed.weight.device
        fast, dtype = self._sampling_net(device)
        x0 = net.embed.weight[lay["unknown"]].sum(0).expand(m, -1).clone()
        free: list[np.ndarray | None] = []
        # Rows that drew the same tokens so far have the same input: while such prefixes are few (the first,
        # low-cardinality columns of the sampling order), one trunk pass per distinct prefix serves them all
        # (``sharing``; off once they are too many, or when rows come with given values).
        sharing = True
        for i, col in enumerate(self.columns_):
            plan = plans[i]
            values = out[col["column"]]
            values.fill(-1 if col["type"] == "discrete" else np.nan)
            rows = None  # every row is free
            if plan["known"] is not None:
                given = plan["known_mask"][start:stop]
                known = plan["known"][start:stop]
                values[given] = known[given]
                rows = np.flatnonzero(~given)
                if given.any():
                    tokens, fine = _encode(col, known[given], within=True)
                    self._add(x0, np.flatnonzero(given), tokens, deltas[i])
                    self._add_place(x0, np.flatnonzero(given), fine, heads[i], col)
                    sharing = False
            free.append(rows)
        # ``first``: one row per distinct prefix; ``inverse``: each row's prefix number (0 .. len(first) - 1)
        first, inverse = np.zeros(1, dtype="int64"), np.zeros(m, dtype="int64")
        placed = False
        tables: dict[tuple[int, ...], torch.Tensor] = {}  # per unit: its columns' deltas and place vectors
        todo = [[i for i in unit if free[i] is None or len(free[i])] for unit in units]
        todo = [unit for unit in todo if unit]
        for step, unit in enumerate(todo):
            rows = free[unit[0]]  # a unit of several columns has every row free (see _passes)
            inputs = x0 if rows is None else x0[torch.as_tensor(rows, device=device)]
            sharing = sharing and len(first) * _DISTINCT_SHARE <= m
            if sharing:
                # padded to a multiple of _SHARED_ROWS rows (repeats of the first prefix): the matrix products then
                # come in few shapes, whose kernels oneDNN builds once and caches, instead of one new shape per
                # block and pass (ames' first 100,000-row draw, both cores: 41-47k -> 49-50k rows per CPU s)
                size = min(-(-len(first) // _SHARED_ROWS) * _SHARED_ROWS, m)
                padded = np.concatenate([first, np.full(size - len(first), first[0])]) if size > len(first) else first
                hidden = _hidden_inplace(fast, inputs[torch.as_tensor(padded, device=device)], net.norm, dtype)
                inverse_t = torch.as_tensor(inverse, device=device)
            else:
                hidden, inverse_t = _hidden_inplace(fast, inputs, net.norm, dtype), None
            fused = [i for i in unit if _fusable(heads[i], plans[i])] if len(unit) > 1 else []
            fused = fused if len(fused) > 1 else []
            given = _fused_draws(heads, fused, plans, hidden, temperature, gen, inverse_t) if fused else {}
            rest = [i for i in unit if i not in given]
            outs, calibrated = _group_linear(heads, rest, hidden) if rest else ([], False)
            outs = dict(zip(rest, outs, strict=True))
            fines: dict[int, np.ndarray] = {}
            for i in unit:
                col, plan = self.columns_[i], plans[i]
                ref = _reference_shift(col, out) if "reference" in col else None
                if ref is not None and rows is not None:
                    ref = ref[rows]
                draw = (i, plan, heads[i], outs.get(i), inverse_t, ref, temperature, gen, calibrated)
                tokens, values, fine = self._draw_column(*draw, given=given.get(i))
                if plan.get("relations"):  # an input of a derived column whose value is fixed (see _hold_relations)
                    _hold_relations(self, i, plans, out, rows, start, tokens, values, fine, draw)
                if "derive" in col:  # where its inputs are known and it meets its condition (see _derive_values)
                    shift = _reference_shift(col["derive"], out)
                    tokens = _derive_values(col, values, shift if rows is None else shift[rows], gen, fine, plan)
                drawn[i] = tokens
                if rows is None:
                    out[col["column"]][:] = values
                else:
                    out[col["column"]][rows] = values
                if fine is not None:
                    fines[i] = fine
            if step == len(todo) - 1:
                break  # the last unit's tokens feed no other column
            self._add_unit(x0, rows, unit, drawn, fines, deltas, heads, tables)
            placed = placed or bool(fines)
            for i in unit if sharing else ():
                first, inverse = _refine(first, inverse, drawn[i], _n_tokens(self.columns_[i]) + 1)
            sharing = sharing and not placed  # a place inside a bin makes rows of one prefix differ

    def _draw_column(
        self,
        i: int,
        plan: dict[str, Any],
        head: _ColumnHead,
        out_i: torch.Tensor,
        inverse: torch.Tensor | None,
        ref: np.ndarray | None,
        temperature: float,
        gen: torch.Generator,
        calibrated: bool = False,
        some: np.ndarray | None = None,
        given: tuple[np.ndarray, torch.Tensor | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Column ``i``'s tokens, values and within-bin places (None: not binned) for the rows of a pass, from the
        trunk's outputs ``out_i`` (one per distinct prefix with ``inverse``; ``calibrated``: see ``_group_linear``);
        ``some``: for these rows only; ``given``: its tokens and within-bin coefficients, already drawn (see
        ``_fused_draws``)."""
        if some is not None:  # their own outputs, one each
            out_i = out_i[torch.as_tensor(some) if inverse is None else inverse[torch.as_tensor(some)]]
            inverse, ref = None, None if ref is None else ref[some]
        col = self.columns_[i]
        if given is None:
            tokens, tilt = _finish_draw(head, out_i, plan["weights"], temperature, gen, inverse, calibrated)
        else:
            tokens, tilt = given
        if tilt is not None and inverse is not None:
            tilt = tilt[inverse]
        fine = np.full(len(tokens), -1, dtype="int64") if head.place is not None else None
        if ref is not None and col["type"] == "exact":
            _exact_from_reference(col, tokens, ref, plan["weights"], self.bias_[i], temperature, gen)
        return tokens, _decode(col, tokens, plan, gen, tilt, temperature, fine, ref), fine

    def _passes(self, plans: list[dict[str, Any]]) -> list[list[int]]:
        """The columns drawn by each trunk pass: constrained columns first, one per pass, then ``groups_``.

        A column with given values in some rows (seed data, imputation) also gets a pass of its own: a pass
        serves rows whose known columns are the same set.
        """
        # a derived column that only may not be missing (imputation) is computed after its inputs instead
        constrained = [
            i
            for i, p in enumerate(plans)
            if p["weights"] is not None and not ("derive" in self.columns_[i] and _not_missing(self.columns_[i], p))
        ]
        groups = getattr(self, "groups_", None) or [[i] for i in self.order_]  # None: fitted before groups
        units = [[i] for i in constrained]
        for group in groups:
            rest = [i for i in group if i not in constrained]
            partial = [i for i in rest if plans[i]["known"] is not None]
            units += [[i] for i in partial]
            if len(rest) > len(partial):
                units.append([i for i in rest if plans[i]["known"] is None])
        return units

    def _group_columns(self, rng: np.random.Generator) -> list[list[int]]:
        """Consecutive columns of the sampling order that one trunk pass draws together (Hoogeboom et al. 2022, 4.2).

        Drawing columns ``order[s:e]`` in one pass, each given ``order[:s]`` only, replaces the model's joint of
        those columns by the product of their conditionals: it costs ``sum_k [H(x_k | x_<s) - H(x_k | x_<k)]``
        nats per row, the columns' conditional mutual information. The any-order network gives every term, so
        the costs are measured on ``_GROUPING_ROWS`` rows sampled from the model itself (no data is looked at
        again, which keeps DP intact) and a dynamic programme picks the groups that minimise the cost plus
        ``_PASS_COST`` nats per pass, with at most ``_MAX_PASSES`` passes: a pass runs the trunk over every row,
        so a wide table's many columns would otherwise make sampling slow however few tokens they have. On ames (74
        columns): 31 passes for 0.09 nats per row (of 69) and 46,500 rows per CPU second; at most 16 passes: 0.50
        nats and 59,400 (draws, not the trunk, take most of the rest).
        """
        d = len(self.columns_)
        order = list(self.order_)
        self.groups_ = [[i] for i in order]  # sampling column by column while the costs are measured
        if d < 3:
            return self.groups_
        drawn: dict[int, np.ndarray] = {}
        self._sample(_GROUPING_ROWS, rng, tokens_out=drawn)
        device = next(self.net_.parameters()).device
        tokens = torch.as_tensor(np.column_stack([drawn[i] for i in range(d)]), device=device)
        lay = {k: v.to(device) for k, v in self.layout_.items()}
        rank = torch.as_tensor(np.argsort(order), device=device)
        nll = np.zeros((d, d))  # nll[s, k]: the column at position k of the order given positions < s
        with torch.inference_mode(), _cpu_threads(device):
            for start in range(d):
                known = (rank < start)[None, :].expand(len(tokens), -1)
                nll[start] = _column_nll(self.net_, lay, tokens, known).mean(0).cpu().numpy()[order]
        own = np.diag(nll)
        # extra[s, e - 1]: the cost of one pass drawing positions s..e-1 (a term below 0 is noise: counted as 0)
        extra = np.cumsum(np.triu(np.clip(nll - own[None, :], 0.0, None)), axis=1)
        best = np.full(d + 1, np.inf)
        best[0], back = 0.0, np.zeros(d + 1, dtype="int64")
        for stop in range(1, d + 1):
            starts = np.arange(stop)
            cost = best[:stop] + extra[starts, stop - 1] + _PASS_COST
            back[stop] = int(np.argmin(cost))
            best[stop] = cost[back[stop]]
        cuts, stop = [], d
        while stop > 0:
            cuts.append(stop)
            stop = back[stop]
        if len(cuts) > _MAX_PASSES:  # a wide table: the cheapest grouping of at most _MAX_PASSES passes
            cuts = _capped_cuts(extra, _MAX_PASSES)
        bounds = [0, *cuts[::-1]]
        self.groups_ = [order[a:b] for a, b in itertools.pairwise(bounds)]
        self.grouping_cost_ = float(sum(extra[a, b - 1] for a, b in itertools.pairwise(bounds)))
        return self.groups_

    def _sampling_net(self, device: torch.device) -> tuple[_Net, torch.dtype]:
        """The network sampling runs: a bfloat16 copy on CPUs with native bfloat16 (AVX512-BF16), else itself.

        Sampling is one trunk pass per column; in bfloat16 sampling is 1.4x as fast (churn: 31,000 -> 44,000 rows/s
        on one loaded core).
        The embeddings, the logits and the draws stay in float32, and the calibration biases are fitted through
        the same path, so the marginals are unaffected. The choice depends on the CPU only, so the same model
        on the same machine always samples the same rows.
        """
        if device.type != "cpu" or not _native_bf16():
            return self.net_, torch.float32
        if getattr(self, "_bf16_net", None) is None:
            self._bf16_net = copy.deepcopy(self.net_).to(torch.bfloat16).eval()
        return self._bf16_net, torch.bfloat16

    def _column_heads(self, lay: dict[str, torch.Tensor], device: torch.device) -> list[_ColumnHead]:
        """Per column, its slice of the output layer (in the sampling network's dtype) and calibration biases."""
        fast, _ = self._sampling_net(device)
        half = fast.ordinal.out_features // 2
        scale = self.net_.shape_scale
        heads = []
        for i in range(len(self.columns_)):
            start = int(lay["out_offset"][i])
            stop = start + int(lay["n_tokens"][i])
            k = int(self.numeric_index_[i])
            weight, bias = fast.head.weight[start:stop], fast.head.bias[start:stop]
            positions, tilted = None, self.columns_[i]["type"] == "binned"
            if k >= 0:
                positions = lay["out_position"][start:stop][lay["out_ordinal"][start:stop]]
            if k >= 0 and len(positions) == stop - start:
                # no 'missing' token: the shape term a*p + b*p^2 needs no normaliser, and a and b are linear in the
                # hidden state, so it folds into the head's weights (in float32, then cast): one product, no extra
                # work per row
                net = self.net_
                rows = [k, k + half]
                p = torch.stack([positions, positions * positions], 1)  # [tokens, 2]
                weight = (net.head.weight[start:stop] + scale * p @ net.ordinal.weight[rows]).to(weight.dtype)
                bias = (net.head.bias[start:stop] + scale * p @ net.ordinal.bias[rows]).to(bias.dtype)
                positions = None
            elif k >= 0:  # the two shape coefficients (and three within-bin ones) ride along as extra outputs
                weight = torch.cat([weight, fast.ordinal.weight[[k, k + half]] * scale])
                bias = torch.cat([bias, fast.ordinal.bias[[k, k + half]] * scale])
            if tilted:
                rows = [k, k + half, k + 2 * half]
                weight = torch.cat([weight, fast.tilt.weight[rows] * scale])
                bias = torch.cat([bias, fast.tilt.bias[rows] * scale])
            calibration = torch.as_tensor(self.bias_[i], device=device)
            head = _ColumnHead(weight.contiguous(), bias.contiguous(), positions, calibration, tilted)
            if tilted and self.net_.place.weight[:, k].any():  # zero: a model saved before places were inputs
                head.place = self.net_.place.weight[:, k].float()
            heads.append(head)
        return heads

    def _deltas(self, lay: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Per column, [tokens + 1, width]: what knowing each token adds to the input (last row: no token)."""
        net, out = self.net_, []
        for i in range(len(self.columns_)):
            start, unknown = int(lay["in_offset"][i]), int(lay["unknown"][i])
            delta = net.embed.weight[start : unknown + 1] - net.embed.weight[unknown]
            k = int(self.numeric_index_[i])
            if k >= 0:
                delta = delta + lay["position"][start : unknown + 1, None] * net.position.weight[:, k]
            out.append(delta)  # the 'unknown' row itself adds nothing: a value without a token stays unknown
        return out

    def _add_unit(
        self,
        x0: torch.Tensor,
        rows: np.ndarray | None,
        unit: list[int],
        drawn: dict[int, np.ndarray],
        fines: dict[int, np.ndarray],
        deltas: list[torch.Tensor],
        heads: list[_ColumnHead],
        tables: dict[tuple[int, ...], torch.Tensor],
    ) -> None:
        """The columns of ``unit`` become known in ``rows`` (None: all): add their tokens' deltas and, for binned
        columns, their places inside their bins (``fines``), in one weighted lookup-and-sum.

        The same sum as ``_add`` and ``_add_place`` per column, but one pass over ``x0`` for the whole unit: on
        ames these updates were a fifth of sampling time.
        """
        placed = [i for i in unit if i in fines and heads[i].place is not None]
        key = tuple(unit)
        if key not in tables:
            tables[key] = torch.cat([deltas[i] for i in unit] + [heads[i].place[None] for i in placed])
        sizes = [len(deltas[i]) for i in unit]
        offsets = np.cumsum([0, *sizes[:-1]])
        idx = [
            np.where(drawn[i] >= 0, drawn[i], size - 1) + off for i, size, off in zip(unit, sizes, offsets, strict=True)
        ]
        weights = None
        if placed:
            start = sum(sizes)
            idx += [np.full(len(fines[i]), start + k) for k, i in enumerate(placed)]
            u = [np.where(fines[i] >= 0, (fines[i] + 0.5) / self.columns_[i]["n_bins"] - 0.5, 0.0) for i in placed]
            weights = np.column_stack([np.ones((len(idx[0]), len(unit))), *u]).astype("float32")
            weights = torch.as_tensor(weights, device=x0.device)
        add = F.embedding_bag(torch.as_tensor(np.column_stack(idx), device=x0.device), tables[key], mode="sum",
                              per_sample_weights=weights)  # fmt: skip
        if rows is None:
            x0 += add
        else:
            x0.index_add_(0, torch.as_tensor(rows, device=x0.device), add)

    def _add_place(
        self, x0: torch.Tensor, rows: np.ndarray | None, fine: np.ndarray, head: _ColumnHead, col: dict[str, Any]
    ) -> None:
        """A binned column becomes known in ``rows`` (None: all): add its values' places inside their bins (``fine``,
        each value's fine bin, -1: none) times the column's place vector."""
        if head.place is None:
            return
        u = torch.as_tensor(np.where(fine >= 0, (fine + 0.5) / col["n_bins"] - 0.5, 0.0), dtype=x0.dtype)
        add = u.to(x0.device)[:, None] * head.place
        if rows is None:
            x0 += add
        else:
            x0.index_add_(0, torch.as_tensor(rows, device=x0.device), add)

    def _add(self, x0: torch.Tensor, rows: np.ndarray | None, tokens: np.ndarray, delta: torch.Tensor) -> None:
        """A column becomes known in ``rows`` (None: all): add what its ``tokens`` (-1: none) say to the input."""
        delta = F.embedding(torch.as_tensor(np.where(tokens >= 0, tokens, len(delta) - 1), device=x0.device), delta)
        if rows is None:
            x0 += delta
        else:
            x0.index_add_(0, torch.as_tensor(rows, device=x0.device), delta)

    # ------------------------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {
            "columns": self.columns_,
            "config": self.config_,
            "order": [int(i) for i in self.order_],
            # a model trained outside ``_fit`` (federated) has no groups: one column per pass
            "groups": [[int(i) for i in g] for g in getattr(self, "groups_", None) or [[i] for i in self.order_]],
            "bias": self.bias_,
            "training": self.train_info_,
            "weights": state_to_arrays(self.net_),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.columns_ = [dict(c) for c in state["columns"]]
        self.config_ = dict(state["config"])
        self.order_ = [int(i) for i in state.get("order", range(len(self.columns_)))]
        self.groups_ = [[int(i) for i in g] for g in state.get("groups", [[i] for i in self.order_])]
        self.train_info_ = state["training"]
        self.bias_ = [np.asarray(b, dtype="float32") for b in state["bias"]]
        self._build_layout()
        device = resolve_device(self.device)
        net = self._new_net()
        # a model saved before the within-bin tilt existed samples within bins uniformly (the tilt's zero init)
        weights = {**state_to_arrays(net), **state["weights"]}
        self.net_ = state_from_arrays(net, weights).to(device).eval()
        self._bf16_net = None


class _ColumnHead:
    """One column's logits from the trunk's output, as sampling needs them: its slice of the output layer, the
    ordinal term of a numeric column, and the calibration biases (what ``_Net.column_logits`` + bias computes,
    with the slices cut once per ``sample`` call instead of once per column and batch)."""

    def __init__(self, weight, bias, positions: torch.Tensor | None, calibration, tilted: bool = False):
        self.weight, self.bias, self.calibration = weight, bias, calibration
        self.positions, self.tilted = positions, tilted
        self.place: torch.Tensor | None = None  # a binned column's place vector (see _Net.place)
        self.group_cache: dict[tuple[int, ...], tuple] = {}
        self.squares = None if positions is None else positions * positions

    def __call__(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.finish(F.linear(hidden, self.weight, self.bias))

    def fused_calibration(self) -> torch.Tensor:
        """What ``_group_linear`` adds to this column's outputs: its calibration biases on its tokens where
        ``finish`` would add them first (no ordinal term), else nothing."""
        if self.positions is not None:
            return torch.zeros(len(self.weight), device=self.calibration.device)
        extra = torch.zeros(len(self.weight) - len(self.calibration), device=self.calibration.device)
        return torch.cat([self.calibration.float(), extra])

    def finish(self, out: torch.Tensor, calibrated: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits [rows, tokens] and, for a binned column, the within-bin coefficients [rows, 3] (see _fine),
        from this column's outputs of the head's product (``calibrated``: from ``_group_linear``, in float32 with
        ``fused_calibration`` added; never changed in place)."""
        tilt = None
        if self.tilted:
            out, tilt = out[:, :-3], out[:, -3:].float()
        if self.positions is None:
            if calibrated:
                return out, tilt
            # float32 biases + bfloat16 outputs: one pass that casts and adds (out.float() + biases took two)
            return self.calibration + out, tilt
        # a copy: ``out`` may be float32 already (the product's own storage), and a redraw reads it again
        logits = out[:, :-2].to(torch.float32, copy=True)
        a, b = out[:, -2:-1].float(), out[:, -1:].float()
        n = len(self.positions)  # value tokens come first; 'missing' (if any) is last
        shape = a * self.positions + b * self.squares
        if n < logits.shape[1]:  # normalised, so that it leaves the share of 'missing' alone
            shape = torch.log_softmax(shape, dim=1)
        # without 'missing', the normaliser is one constant per row, which a draw ignores: skipped
        logits[:, :n] += shape
        return logits + self.calibration, tilt


def _capped_cuts(extra: np.ndarray, passes: int) -> list[int]:
    """The ends of the passes (last first) of the grouping of least ``extra`` cost plus ``_PASS_COST`` per pass
    among those of at most ``passes`` passes (``extra[s, e - 1]``: the cost of one pass drawing positions s..e-1)."""
    d = len(extra)
    best = np.full((passes + 1, d + 1), np.inf)  # best[k, e]: positions 0..e-1 in exactly k passes
    best[0, 0] = 0.0
    back = np.zeros((passes + 1, d + 1), dtype="int64")
    for k in range(1, passes + 1):
        for stop in range(k, d + 1):
            cost = best[k - 1, :stop] + extra[np.arange(stop), stop - 1] + _PASS_COST
            back[k, stop] = int(np.argmin(cost))
            best[k, stop] = cost[back[k, stop]]
    k = int(np.argmin(best[1:, d])) + 1
    cuts, stop = [], d
    while stop > 0:
        cuts.append(stop)
        stop, k = int(back[k, stop]), k - 1
    return cuts


def _group_linear(heads: list[_ColumnHead], unit: list[int], hidden: torch.Tensor) -> tuple[list[torch.Tensor], bool]:
    """The head outputs of the columns in ``unit``, one matrix product for all of them (cached per unit), and
    whether they are calibrated (see ``_ColumnHead.finish``): a unit of several columns gets them in float32 with
    the calibration biases added, by one cast and one in-place add over the whole product.

    Adding a column's float32 biases to its bfloat16 slice of a unit's product took torch's slow path for mixed
    dtypes on a strided view (about 1 ns per logit, 1.4 us of 16 per row on ames); the whole product's cast and
    add cost a fraction of that, with the same numbers to the bit. Not above ``_FUSED_LOGITS`` logits: flights'
    unit of 611 tokens (16,384 rows, 40 MB in float32) sampled 8% slower so.
    """
    key = tuple(unit)
    cache = heads[unit[0]].group_cache
    if key not in cache:
        cache[key] = (
            torch.cat([heads[i].weight for i in unit]),
            torch.cat([heads[i].bias for i in unit]),
            [len(heads[i].weight) for i in unit],
            torch.cat([heads[i].fused_calibration() for i in unit]),
        )
    weight, bias, sizes, calibration = cache[key]
    out = F.linear(hidden, weight, bias)
    if len(unit) == 1:  # a contiguous product: ``finish`` casts and adds in one vectorised pass, chunk by chunk
        return [out], False
    if out.numel() > _FUSED_LOGITS:  # a float32 copy would be too large: added per column, chunk by chunk
        return list(out.split(sizes, dim=1)), False
    out = out.float() if out.dtype != torch.float32 else out
    return list(out.add_(calibration).split(sizes, dim=1)), True


def _fusable(head: _ColumnHead, plan: dict[str, Any]) -> bool:
    """Whether a column's draw can go with others' in ``_fused_draws``: its logits are its outputs plus calibration
    (no ordinal term to normalise), it has at most ``_FUSED_TOKENS`` tokens and no relation to hold."""
    return head.positions is None and len(head.calibration) <= _FUSED_TOKENS and not plan.get("relations")


def _fused_draws(
    heads: list[_ColumnHead],
    columns: list[int],
    plans: list[dict[str, Any]],
    hidden: torch.Tensor,
    temperature: float,
    gen: torch.Generator,
    inverse: torch.Tensor | None = None,
) -> dict[int, tuple[np.ndarray, torch.Tensor | None]]:
    """The draws of several columns of one pass (see ``_fusable``) at once: per column, its tokens and within-bin
    coefficients (see ``_ColumnHead.finish``), as ``_finish_draw`` draws them (inverse CDF, the same distribution)
    but with other uniforms.

    Token-major: one product ``[tokens, rows]`` for all of them, each column's logits padded to the widest of its
    bucket (padding: -inf), so that a bucket is one ``[columns, tokens, rows]`` tensor whose maximum, running sum
    (one add per token) and count under the uniform run along the rows, vectorised, in a dozen operations for the
    whole bucket. Row by row (``_draw``), a few tokens per row leave a vector kernel mostly idle, and each column
    paid a dozen operations of its own: ames' 74 columns in 16 passes.
    """
    key = ("fused", *columns)
    cache = heads[columns[0]].group_cache
    if key not in cache:
        buckets: list[list[int]] = []
        size = {i: len(heads[i].calibration) for i in columns}
        for i in sorted(columns, key=size.get):  # ascending: joins the bucket while padding stays under a third
            if buckets and (len(buckets[-1]) + 1) * size[i] <= 1.5 * (sum(size[j] for j in buckets[-1]) + size[i]):
                buckets[-1].append(i)
            else:
                buckets.append([i])
        weights, biases, calibrations = [], [], []
        for bucket in buckets:
            width = max(len(heads[i].calibration) for i in bucket)
            for i in bucket:
                head, k = heads[i], size[i]
                pad = width - k
                weights.append(F.pad(head.weight[:k], (0, 0, 0, pad)))
                biases.append(F.pad(head.bias[:k], (0, pad)))
                calibrations.append(F.pad(head.calibration.float(), (0, pad), value=-torch.inf))
        tilted = [i for i in columns if heads[i].tilted]
        weights += [heads[i].weight[-3:] for i in tilted]
        biases += [heads[i].bias[-3:] for i in tilted]
        cache[key] = (buckets, torch.cat(weights), torch.cat(biases)[:, None], torch.cat(calibrations)[:, None], tilted)
    buckets, weight, bias, calibration, tilted = cache[key]
    out = torch.addmm(bias, weight, hidden.T)  # [tokens, rows]
    drawn: dict[int, tuple[np.ndarray, torch.Tensor | None]] = {}
    start = 0
    for bucket in buckets:
        n, width = len(bucket), max(len(heads[i].calibration) for i in bucket)
        stop = start + n * width
        p = out[start:stop].float().add_(calibration[start:stop]).view(n, width, -1)
        if temperature != 1.0:
            p.div_(temperature)
        logw = [plans[i]["weights"] for i in bucket]
        if any(w is not None for w in logw):
            with np.errstate(divide="ignore"):
                logw = [np.zeros(width) if w is None else np.pad(np.log(w), (0, width - len(w))) for w in logw]
            p.add_(torch.as_tensor(np.stack(logw), dtype=torch.float32, device=p.device)[:, :, None])
        p.sub_(p.amax(1, keepdim=True)).exp_()
        for k in range(1, width):  # the running sums over each column's tokens
            p[:, k].add_(p[:, k - 1])
        if inverse is not None:  # as a 2-d gather: along the last of 3 dimensions, torch's is 7x slower
            p = p.view(n * width, -1).index_select(1, inverse).view(n, width, -1)
        total = p[:, -1]
        u = torch.rand(total.shape, generator=gen).to(total.device)
        # strictly below the total, as in _draw: the first sum above it always has a positive step
        u = torch.minimum(u.mul_(total), torch.nextafter(total, torch.zeros((), device=total.device)))
        # the count of sums at most u, in place and in float32 (exact up to 2^24): a bool tensor's sum over the
        # middle dimension took 4x as long
        tokens = p.le_(u[:, None]).sum(1).to(torch.int64).cpu().numpy()
        for j, i in enumerate(bucket):
            drawn[i] = (tokens[j], None)
        start = stop
    for j, i in enumerate(tilted):  # per distinct input, as _finish_draw's (_draw_column spreads them over the rows)
        drawn[i] = (drawn[i][0], out[start + 3 * j : start + 3 * j + 3].T.float())
    return drawn


# ---------------------------------------------------------------------------------------- network and loss
class _Net(nn.Module):
    """Sum of token embeddings (+ numeric positions) -> LayerNorm -> SiLU -> MLP trunk -> one linear head."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        n_numeric: int,
        width: int,
        depth: int,
        shape_scale: float = 1.0,
        trunk: str = "layernorm",
    ):
        super().__init__()
        self.shape_scale = float(shape_scale)
        self.plain = trunk == "plain"
        self.embed = nn.Embedding(n_in, width)
        # small embeddings (not N(0, 1)) move at Adam's step size: the network learns what a token means instead of
        # decoding fixed random vectors (on a 2,000-row table, income ~ age: correlation 0.03 -> 0.78)
        nn.init.normal_(self.embed.weight, std=0.1)
        self.position = nn.Linear(max(n_numeric, 1), width, bias=False)
        if self.plain:
            # no normalisation: ReLU, then (Linear -> ReLU) x (depth - 1). Sampling runs the trunk once per pass
            # over every row, and LayerNorm and SiLU were 40% of that on ames (see the ``trunk`` parameter)
            self.norm = nn.Identity()
            self.trunk = nn.Sequential(
                *itertools.chain.from_iterable((nn.Linear(width, width), nn.ReLU()) for _ in range(depth - 1))
            )
        else:  # the default, and models saved before the choice existed
            self.norm = nn.LayerNorm(width)
            self.trunk = MLP(width, width, depth - 1, dropout=_DROPOUT) if depth > 1 else nn.Identity()
        self.head = nn.Linear(width, n_out)
        # and on the output side: a numeric column's value tokens also get log q, q ~ exp(a*position + b*position^2)
        # normalised over them (a discretised Gaussian in quantile space), so "the conditional median moves up" is
        # two numbers to learn, not 32; normalised, so that it leaves the share of missing values alone
        self.ordinal = nn.Linear(width, 2 * max(n_numeric, 1))
        # a known binned value's place inside its bin, on [-1/2, 1/2], times a learned vector (zero at first, and in
        # a model saved before it existed): without it a later column sees only the bin, 1/32 of the range
        self.place = nn.Linear(max(n_numeric, 1), width, bias=False)
        nn.init.zeros_(self.place.weight)
        # within a coarse quantile bin, the fine bins' logits (see _fine); zero at first (uniform)
        self.tilt = nn.Linear(width, 3 * max(n_numeric, 1))
        nn.init.zeros_(self.tilt.weight)
        nn.init.zeros_(self.tilt.bias)

    def forward(
        self, idx: torch.Tensor, lay: dict[str, torch.Tensor], places: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every column's logits, and the within-bin coefficients [rows, 3 * numeric columns] (see ``_fine``),
        for rows with token indices ``idx`` (one per column, known or "unknown") and, optionally, the known binned
        values' places inside their bins ``places`` [rows, numeric columns] (0: none; see ``_place_inputs``)."""
        positions = lay["position"][idx][:, lay["numeric_column"]]
        if positions.shape[1] == 0:
            positions = torch.zeros(len(idx), 1, device=idx.device)
        x0 = self.embed(idx).sum(1) + self.position(positions)
        if places is not None and places.shape[1] == positions.shape[1]:
            x0 = x0 + self.place(places)
        hidden = self.hidden(x0)
        # under bfloat16 autocast, the outputs become float32 at once: the loss and the shape terms stay exact
        logits = self.head(hidden).float()
        token = lay.get("ordinal_token")
        if token is None or len(token):
            shape = self.ordinal(hidden).float() * self.shape_scale
            # computed on the numeric columns' value tokens only (on flights, a third of the output), each column's
            # shape term normalised over its own value tokens
            if token is None:  # a layout built before the ordinal token lists existed
                token = torch.nonzero(lay["out_ordinal"])[:, 0]
            k = lay["out_numeric"][token]
            a, b = shape[:, k], shape[:, k + shape.shape[1] // 2]
            pos = lay["out_position"][token]
            ordinal = a * pos + b * pos * pos
            ordinal = ordinal - _segment_logsumexp(ordinal, k, shape.shape[1] // 2)[:, k]
            logits = logits.index_add(1, token, ordinal)
        return logits, self.tilt(hidden).float() * self.shape_scale

    def hidden(self, x0: torch.Tensor) -> torch.Tensor:
        if self.plain:
            return self.trunk(F.relu(x0))
        return self.trunk(F.silu(self.norm(x0)))

    def column_logits(self, hidden: torch.Tensor, lay: dict[str, torch.Tensor], i: int, k: int) -> torch.Tensor:
        """The logits of column ``i`` alone (``k``: its index among the numeric columns, -1 if it is not one)."""
        start = int(lay["out_offset"][i])
        stop = start + int(lay["n_tokens"][i])
        logits = F.linear(hidden, self.head.weight[start:stop], self.head.bias[start:stop]).float()
        if k >= 0:
            rows = [k, k + self.ordinal.out_features // 2]
            a, b = (
                (self.shape_scale * F.linear(hidden, self.ordinal.weight[rows], self.ordinal.bias[rows]))
                .float()
                .unbind(1)
            )
            pos = lay["out_position"][start:stop]
            values = lay["out_ordinal"][start:stop]
            ordinal = torch.log_softmax(a[:, None] * pos[values] + b[:, None] * pos[values] ** 2, dim=1)
            logits[:, values] += ordinal
        return logits


def _column_nll(
    net: _Net, lay: dict[str, torch.Tensor], tokens: torch.Tensor, known: torch.Tensor, within_only: bool = False
) -> torch.Tensor:
    """[rows, columns]: each column's cross-entropy given the ``known`` columns (known ones included).

    ``tokens`` may carry within-bin place codes after the columns (see ``_train``); a binned value's term then
    adds the negative log density of its place within the bin. ``within_only``: that term alone, [rows, numeric
    columns] (NaN where the value is not in a bin).
    """
    d = known.shape[1]
    places, tokens = tokens[:, d:], tokens[:, :d]
    idx = torch.where(known, lay["in_offset"] + tokens, lay["unknown"])
    has_places = places.shape[1] > 0 and len(lay["numeric_column"]) > 0
    if has_places:
        coarse = tokens[:, lay["numeric_column"]] - lay["bin_start"]
        valid = (places >= 0) & (coarse >= 0) & (coarse < lay["n_bins"])
        inputs = _place_inputs(places, lay["n_bins"], valid & known[:, lay["numeric_column"]])
        logits, tilt = net(idx, lay, inputs)
    else:
        logits, tilt = net(idx, lay)
    nll = _segment_logsumexp(logits, lay["out_column"], d) - logits.gather(1, lay["out_offset"] + tokens)
    if not has_places:
        return nll
    k = int(lay["n_bins"].max())
    if k == 0:
        return nll
    n = len(lay["numeric_column"])
    fine = _fine(tilt.view(len(tilt), 3, n).transpose(1, 2), coarse.clamp(min=0), k)  # [rows, n, k]
    within = torch.logsumexp(fine, 2) - fine.gather(2, places.clamp(min=0)[:, :, None])[:, :, 0]
    if within_only:
        return torch.where(valid, within, torch.nan)
    return nll.index_add(1, lay["numeric_column"], torch.where(valid, within, 0.0))


def _place_inputs(places: torch.Tensor, n_bins: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """[rows, numeric columns]: each known binned value's fine bin (``places``) as a place on [-1/2, 1/2] inside
    its coarse bin (``n_bins``: each numeric column's fine bins per coarse bin), 0 where not ``known``."""
    u = (places.to(torch.float32) + 0.5) / n_bins.clamp(min=1).to(torch.float32) - 0.5
    return torch.where(known, u, 0.0)


def _fine(coef: torch.Tensor, coarse: torch.Tensor, n_bins: int) -> torch.Tensor:
    """[..., n_bins]: the logits of the fine quantile bins inside coarse bin ``coarse`` (one per row).

    ``coef`` [..., 3] holds alpha, beta, gamma: logit_k = (alpha + beta * p) * u_k + gamma * u_k^2, with ``p`` the
    coarse bin's position on [-1, 1] and ``u_k`` the fine bin's on [-1/2, 1/2]. A Gaussian in quantile space,
    -(p + u*w - mu)^2 / (2 s^2), has exactly this form, so three numbers per row let the value inside its bin
    move with the other columns (and peak there), where a uniform draw would ignore them; they are too few to
    memorise rows, unlike a free fine token.
    """
    u = (torch.arange(n_bins, device=coef.device, dtype=coef.dtype) + 0.5) / n_bins - 0.5
    position = (2 * coarse.to(coef.device, coef.dtype) + 1) / n_bins - 1  # coarse may come from the CPU
    slope = coef[..., 0] + coef[..., 1] * position
    return slope[..., None] * u + coef[..., 2:3] * u * u


def _fine_draw(
    coef: torch.Tensor, coarse: torch.Tensor, n_bins: int, temperature: float, gen: torch.Generator
) -> np.ndarray:
    """Each row's fine bin inside coarse bin ``coarse``, drawn from softmax(``_fine``'s logits / temperature) by
    its inverse CDF, token-major: the logits [fine bins, rows] come from one product, and their maximum, running
    sums (one add per fine bin) and count under the uniform run along the rows, vectorised. Row by row
    (``_fine`` then ``_draw``) this was about a tenth of ames' sampling time."""
    coef = coef.float()
    position = (2 * coarse.to(coef.device, torch.float32) + 1) / n_bins - 1  # coarse may come from the CPU
    u = (torch.arange(n_bins, dtype=torch.float32, device=coef.device) + 0.5) / n_bins - 0.5
    basis = torch.stack([u, u * u], 1) / temperature  # [fine bins, 2]
    p = torch.mm(basis, torch.stack([coef[:, 0] + coef[:, 1] * position, coef[:, 2]]))
    p = p.sub_(p.amax(0)).exp_()
    for k in range(1, n_bins):
        p[k].add_(p[k - 1])
    total = p[-1]
    v = torch.rand(total.shape, generator=gen).to(total.device).mul_(total)
    v = torch.minimum(v, torch.nextafter(total, torch.zeros((), device=total.device)))  # as in _draw
    return p.le_(v).sum(0).to(torch.int64).cpu().numpy()


def _training_matrix(
    columns: list[dict[str, Any]], arrays: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """[rows, columns + numeric columns]: every column's tokens, then each numeric column's within-bin place
    (-1: none), the input ``Autoregressive._train`` expects."""
    encoded = [_encode(col, arrays[col["column"]], rng, within=True) for col in columns]
    places = [place for col, (_, place) in zip(columns, encoded, strict=True) if col["type"] != "discrete"]
    return np.column_stack([*(tokens for tokens, _ in encoded), *places])


def _loss(net: _Net, lay: dict[str, torch.Tensor], tokens: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Per row, the mean cross-entropy of the unknown columns given the known ones.

    A derived column whose inputs are all known and not missing is left out: sampling computes it from them
    (see ``_derive_values``). Learning its clock arithmetic from tokens had made flights' training run 141 epochs
    instead of 96 (191 against 126 CPU s), at a worse validation loss.
    """
    nll = _column_nll(net, lay, tokens, known)
    unknown = (~known).float()
    if "derive_inputs" in lay:
        open_ = (~known | (tokens[:, : known.shape[1]] == lay["missing_token"])).float()
        computed = (open_ @ lay["derive_inputs"].T == 0) & (lay["derive_inputs"].sum(1) > 0)
        unknown = unknown * (~computed).float()
    return (nll * unknown).sum(1) / unknown.sum(1).clamp(min=1)


def _hidden_inplace(
    net: _Net, x0: torch.Tensor, norm: nn.Module | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``net.hidden(x0)`` with the activations computed in place (sampling only: no gradients, fewer buffers).

    With ``norm`` (the float32 network's), the first LayerNorm runs on the float32 sums before the cast to
    ``dtype``: faster than in bfloat16 on CPU, and more exact. The rows go through in chunks of
    ``_TRUNK_CHUNK``, so that each chunk's activations stay in the CPU's cache between the layers.
    """
    if len(x0) <= _TRUNK_CHUNK:
        return _hidden_chunk(net, x0, norm, dtype)
    out = None
    for start in range(0, len(x0), _TRUNK_CHUNK):
        h = _hidden_chunk(net, x0[start : start + _TRUNK_CHUNK], norm, dtype)
        if out is None:
            out = torch.empty(len(x0), h.shape[1], dtype=h.dtype, device=h.device)
        out[start : start + len(h)] = h
    return out


def _hidden_chunk(net: _Net, x0: torch.Tensor, norm: nn.Module | None, dtype: torch.dtype) -> torch.Tensor:
    if net.plain:
        h = F.relu(x0.to(dtype, copy=True), inplace=True)  # a copy: x0 is kept
        for layer in net.trunk:
            h = F.relu(h, inplace=True) if isinstance(layer, nn.ReLU) else layer(h)
        return h
    h = F.silu(norm(x0) if norm is not None else net.norm(x0.to(dtype)), inplace=True).to(dtype)
    for layer in net.trunk.net if isinstance(net.trunk, MLP) else ():
        h = F.silu(h, inplace=True) if isinstance(layer, nn.SiLU) else layer(h)
    return h


def _segment_logsumexp(x: torch.Tensor, segment: torch.Tensor, n: int) -> torch.Tensor:
    """[rows, n]: logsumexp of ``x`` [rows, tokens] over each segment of tokens (a per-segment max for stability)."""
    b = len(x)
    top = torch.full((b, n), -torch.inf, device=x.device).scatter_reduce(1, segment.expand(b, -1), x.detach(), "amax")
    top = torch.where(torch.isfinite(top), top, 0.0)
    sums = torch.zeros(b, n, device=x.device).index_add(1, segment, torch.exp(x - top[:, segment]))
    return torch.log(sums) + top


def _native_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe()) if probe is not None else False


@contextlib.contextmanager
def _cpu_threads(device: torch.device) -> Iterator[None]:
    """Run torch on one CPU thread, restoring the caller's setting afterwards.

    Sampling's worker threads enter it too: torch's setting is global to the process, and a new thread takes it up
    at its first parallel kernel, so each of ``workers`` threads runs on one CPU thread.

    The network's matrices are small: a second thread gains little, and on a CPU shared with other processes the
    intra-op threads wait on each other (fitting make_mixed(1000) took 9 s on one thread, over 120 s on two).
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sampling_order(columns: list[dict[str, Any]], arrays: dict[str, np.ndarray] | None = None) -> list[int]:
    """Columns with fewer tokens first (table order among equals); with ``arrays``, the binned columns and the other
    numeric ones of more than ``_ORDER_TOKENS`` tokens last, the ones the other numeric columns predict best at
    the very end.

    Rows share a prefix of drawn tokens longer that way, and sampling computes the network once per distinct
    prefix (see ``_sample_rows``): churn's yes/no columns first leave ten of its twenty columns nearly free.
    Among the many-valued numeric columns the order does not change that (a drawn place inside a bin ends the
    sharing), but it decides which column of a near-deterministic relation is drawn last, given the others:
    see ``_predictability``.
    """
    by_tokens = [int(i) for i in np.argsort([_n_tokens(col) for col in columns], kind="stable")]
    if arrays is None or not _ORDER_BY_PREDICTABILITY:
        return by_tokens
    wide = [i for i in by_tokens if columns[i]["type"] == "binned" or _n_tokens(columns[i]) > _ORDER_TOKENS]
    wide = [i for i in wide if columns[i]["type"] != "discrete"]
    if len(wide) < 2:
        return by_tokens
    score = _predictability(columns, arrays)
    rest = [i for i in by_tokens if i not in wide]
    return rest + sorted(wide, key=lambda i: score[i])  # stable: token order among equals


def _predictability(columns: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> dict[int, float]:
    """Per numeric column, the R^2 of a least-squares fit of its ranks on the other numeric columns' ranks.

    A column the others predict well is drawn after them, given them, rather than being an input drawn early
    whose blur the later columns inherit. Weather's humidity, temperature and dew point determine each other; on
    a split of the benchmark's training rows (80% fitted, 20% scored), TSTR/TRTR for the temperature over 3
    sampling seeds went from 0.957 and 0.951 (fit seeds 0 and 1) to 0.962 and 0.965; ames 0.944 and 0.940 ->
    0.938 and 0.940, flights 0.884 -> 0.888 (within their spread between sampling seeds).
    """
    numeric = [i for i, col in enumerate(columns) if col["type"] != "discrete"]
    n = len(arrays[columns[numeric[0]]["column"]])
    rows = slice(None, None, max(1, n // _REFERENCE_ROWS))
    ranks = []
    for i in numeric:
        x = np.asarray(arrays[columns[i]["column"]], dtype="float64")[rows]
        known = np.sort(x[~np.isnan(x)])
        if not len(known):
            ranks.append(np.zeros(len(x)))
            continue
        r = (np.searchsorted(known, x, "left") + np.searchsorted(known, x, "right")) / (2 * len(known)) - 0.5
        ranks.append(np.where(np.isnan(x), 0.0, r))  # a missing value at the middle rank
    z = np.column_stack(ranks)
    score = {}
    for k, i in enumerate(numeric):
        y = z[:, k]
        design = np.column_stack([np.delete(z, k, axis=1), np.ones(len(y))])
        fit = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
        score[i] = float(1.0 - fit.var() / y.var()) if y.var() > 0 else 0.0
    return score


def _auto_width(n: int, tokens: int | None = None) -> int:
    """64 below ``_MIN_ROWS`` rows, or with fewer than ``_ROWS_PER_TOKEN`` rows per token (``tokens``: all
    columns' tokens), where every token's input embedding and output row of ``width`` numbers are fitted on a row
    or two; else 128, however many the rows.

    Ames (2,344 rows, 1,350 tokens) is the one benchmark table below two rows per token (the next, weather, has
    3.9). On a split of its training rows (80% fitted, 20% scored), 3 sampling seeds per fit, width 128 -> 64:
    TSTR/TRTR 0.938 0.940 0.946 -> 0.955 0.972 0.965 (fit seeds 0-2), DCR share 0.538 -> 0.520 (fit seed 0, 8
    draws); width 32 0.946. The rule stops there: weather at 64 (fit seeds 0-1, 3 sampling seeds each) lowered its
    DCR share (8 draws) 0.570 -> 0.536 and detection AUC 0.605 -> 0.593 but lost quality 0.9728 -> 0.9678 (both
    seeds), TSTR/TRTR 0.988 either way.

    No width above 128 (256 from 10,000 rows until session 22): the trunk runs once per pass over every sampled
    row, and at 256 flights (21,600 rows) sampled 28,000 rows per CPU second against 59,000 at 128 (one loaded
    core), short of the 100,000 rows/s asked of two cores. Flights' split at 128 (fit seed 1, 3 sampling seeds):
    quality 0.8410 -> 0.8415, TSTR/TRTR 0.978 -> 0.969 (draws 0.95-1.00 at either), DCR share 0.538 -> 0.529, fit
    CPU 124 s either way, but detection AUC 0.702 -> 0.715 (fit seed 0, older code: 0.696 -> 0.718).
    """
    if n < _MIN_ROWS or (tokens is not None and n < _ROWS_PER_TOKEN * tokens):
        return 64
    return 128


def _finish_draw(
    head: _ColumnHead,
    out: torch.Tensor,
    weights: np.ndarray | None,
    temperature: float,
    gen: torch.Generator,
    inverse: torch.Tensor | None = None,
    calibrated: bool = False,
) -> tuple[np.ndarray, torch.Tensor | None]:
    """A column's draws (see ``_draw``) and within-bin coefficients (see ``_ColumnHead.finish``) from its outputs
    (``_group_linear``'s, ``calibrated`` or not).

    Over many rows and tokens, in chunks of about ``_DRAW_CHUNK`` logits with the uniforms drawn first, all at
    once: the same draws to the last bit, as every step works row by row, but the chunk's logits, probabilities
    and cumulative sums stay in the cache and no buffer of tens of megabytes is allocated, each page of it
    faulted in, per column and batch (flights' ``tailnum``, 502 tokens: 33 MB per buffer at 16,384 rows).
    """
    step = max(_DRAW_CHUNK // out.shape[1], 1)
    if inverse is not None or len(out) <= step:
        logits, tilt = head.finish(out, calibrated)
        return _draw(logits, weights, temperature, gen, inverse), tilt
    u = torch.rand(len(out), 1, generator=gen)
    tokens, tilts = [], []
    for start in range(0, len(out), step):
        logits, tilt = head.finish(out[start : start + step], calibrated)
        tokens.append(_draw(logits, weights, temperature, gen, u=u[start : start + step]))
        tilts.append(tilt)
    return np.concatenate(tokens), None if tilts[0] is None else torch.cat(tilts)


def _draw(
    logits: torch.Tensor,
    weights: np.ndarray | None,
    temperature: float,
    gen: torch.Generator,
    inverse: torch.Tensor | None = None,
    u: torch.Tensor | None = None,
) -> np.ndarray:
    """One token per row from softmax(logits / temperature) * weights, renormalised (inverse CDF).

    With ``inverse``, ``logits`` holds one row per distinct input and row ``r`` draws from ``logits[inverse[r]]``.
    ``u`` [rows, 1]: the rows' uniforms, already drawn (None: drawn here, from ``gen``).
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    if weights is not None:
        with np.errstate(divide="ignore"):
            logits = logits + torch.as_tensor(np.log(weights), dtype=torch.float32, device=logits.device)
    # the probabilities (unnormalised below 16 tokens: exp(logits - max)) and their running sum; the draw is where a
    # uniform on [0, total) falls. torch's softmax kernel is vectorised over 16 floats: 2-3x as fast from 16 tokens
    # on, slower below.
    if logits.shape[1] >= 16:
        cum = torch.softmax(logits, 1).cumsum_(1)
    else:
        cum = torch.exp(logits - logits.amax(1, keepdim=True)).cumsum_(1)
    if inverse is not None:
        cum = cum[inverse]
    total = cum[:, -1:]
    # strictly below the total, so that the first entry above it always has a positive step: searchsorted (right)
    # never lands on a token of probability 0, round-off included
    if u is None:
        u = torch.rand(len(cum), 1, generator=gen)
    u = torch.minimum(u.to(cum.device) * total, torch.nextafter(total, 0 * total))
    # below _SEARCH_TOKENS tokens, the number of entries <= u: the same index as searchsorted's, faster
    few = cum.shape[1] < _SEARCH_TOKENS
    tok = (cum <= u).sum(1) if few else torch.searchsorted(cum, u, right=True)[:, 0]
    return tok.cpu().numpy()  # int64 already


def _refine(first: np.ndarray, inverse: np.ndarray, tokens: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Split each group of rows (``inverse``: a row's group, ``first``: a row of each) by the token ``tokens`` drew.

    Linear in the rows (a lookup table over ``len(first) * n`` codes, ``n`` > every token), unlike a sort.
    """
    code = inverse * n + tokens
    present = np.zeros(len(first) * n, dtype=bool)
    present[code] = True
    number = np.cumsum(present) - 1
    inverse = number[code]
    first = np.empty(int(present.sum()), dtype="int64")
    first[inverse[::-1]] = np.arange(len(code) - 1, -1, -1)  # the last write wins: each group's first row
    return first, inverse


# ---------------------------------------------------------------------------------------- columns as tokens
def _plan(name: str, a: np.ndarray, t: Any, n_bins: int, max_levels: int) -> dict[str, Any]:
    """How column ``name`` becomes tokens (JSON-able, with numpy arrays; saved with the model)."""
    if t.discrete:
        codes = np.asarray(a, dtype="int64")
        counts = np.bincount(codes[codes >= 0], minlength=t.n_levels)
        by_count = np.argsort(-counts, kind="stable")
        seen = by_count[counts[by_count] > 0]
        # a level seen once gets no token of its own: nothing about it can be learned but its row, which the
        # network would then memorise (airports' unique codes: DCR share 0.545); it shares the "other" token
        keep = min(max_levels, int((counts[seen] >= _MIN_LEVEL_COUNT).sum()))
        return {
            "column": name,
            "type": "discrete",
            "n_levels": int(t.n_levels),
            "kept": seen[:keep].astype("int64"),
            "pool": seen[keep:].astype("int64"),
            "pool_counts": counts[seen[keep:]].astype("float64"),
            "missing": bool((codes < 0).any()),
        }
    x = np.asarray(a, dtype="float64")
    obs = x[~np.isnan(x)]
    missing = bool(np.isnan(x).any())
    values, counts = np.unique(obs, return_counts=True)
    grid = np.quantile(obs, np.linspace(0.0, 1.0, _GRID))
    if len(values) <= _MAX_EXACT:
        return {"column": name, "type": "exact", "values": values, "grid": grid, "missing": missing}
    heavy = np.flatnonzero(counts >= max(2, _MASS_SHARE * len(obs)))
    heavy = np.sort(heavy[np.argsort(-counts[heavy], kind="stable")[:_MAX_MASSES]])
    masses = values[heavy]
    rest = obs[~np.isin(obs, masses)]
    return {
        "column": name,
        "type": "binned",
        "masses": masses,
        # the empirical quantile function on n_bins * n_bins + 1 levels; bin c spans levels c*n_bins..(c+1)*n_bins
        "quantiles": np.quantile(rest, np.linspace(0.0, 1.0, n_bins * n_bins + 1)),
        "n_bins": int(n_bins),
        "grid": grid,
        "missing": missing,
    }


def _derivations(columns: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> None:
    """Mark the numeric columns that are an exact linear function of one or two others (``col["derive"]``).

    Flights holds four such relations: the scheduled departure is ``100 * hour + minute``, the departure time is
    the scheduled one plus the delay and the arrival time the scheduled arrival plus the arrival delay (both in
    clock arithmetic: HHMM times read as minutes after midnight, modulo a day, see ``_is_clock``), and the
    scheduled hour stamp is ``24 * day + hour`` hours. The network draws each column of such a relation with its
    own blur, so the sampled rows kept them only loosely (the real-data model of the arrival delay scored
    R^2 0.61 on synthetic rows against 0.93 on real ones), and a model trained on synthetic rows learns no clock
    arithmetic. A derived column is instead computed from its inputs after they are drawn (see
    ``_derive_values``); it goes after them in the sampling order (see ``_derived_last``).

    Every many-valued numeric column (see ``_can_reference``) is tried as a function of one, then two, of the
    other numeric columns, each also read as clock minutes where it is one (see ``_exact_relations``). A
    relation among three columns is found three times, once per column; the one derived is the most varied
    (the highest entropy of its values: a sum of independent parts varies more than either part, so the departure
    time, not the schedule or the delay, nor the arrival schedule from the arrival time and delay), and among
    equals the one whose inputs are least correlated. A column is derived once, and never from a column that
    depends on it.
    """
    numeric = [i for i, col in enumerate(columns) if col["type"] != "discrete"]
    if len(numeric) < 2:
        return
    n = len(np.asarray(arrays[columns[numeric[0]]["column"]]))
    step = max(1, n // _REFERENCE_ROWS)
    features: dict[tuple[int, bool], np.ndarray] = {}
    for i in numeric:
        y = np.asarray(arrays[columns[i]["column"]][::step], dtype="float64")
        features[(i, False)] = y
        if _is_clock(y):
            features[(i, True)] = _clock_minutes(y)
    entropy = {}  # of each column's values, in nats
    for i in numeric:
        y = features[(i, False)]
        _, counts = np.unique(y[~np.isnan(y)], return_counts=True)
        p = counts / max(1, counts.sum())
        entropy[i] = float(-(p * np.log(p)).sum())
    found = []
    for t in numeric:
        if not _can_reference(columns[t]):
            continue
        clock = (t, True) in features
        others = {k: v for k, v in features.items() if k[0] != t}
        for keys, coef, rest in _exact_relations(features[(t, clock)], others, _DAY_MINUTES if clock else None):
            margin = entropy[t] - max(entropy[k[0]] for k in keys)
            if margin < -1e-9:
                continue  # not the most varied column of its relation
            apart = 0.0
            if len(keys) == 2:
                a, b = features[keys[0]], features[keys[1]]
                both = ~np.isnan(a) & ~np.isnan(b)
                if a[both].std() > 0 and b[both].std() > 0:
                    apart = abs(float(np.corrcoef(a[both], b[both])[0, 1]))
            found.append((-margin, apart, t, clock, keys, coef, rest))
    inputs: dict[int, set[int]] = {}

    def depends(i: int, j: int) -> bool:  # whether column i is derived, directly or not, from column j
        return i in inputs and (j in inputs[i] or any(depends(k, j) for k in inputs[i]))

    for _, _, t, clock, keys, coef, rest in sorted(found, key=lambda f: f[:2]):
        if t in inputs or any(k[0] == t or depends(k[0], t) for k in keys):
            continue
        inputs[t] = {k[0] for k in keys}
        col = columns[t]
        y = features[(t, False)]
        if clock:  # the residual modulo a day, nearest 0: -1e-12, not 1440 - 1e-12
            rest = (rest + _DAY_MINUTES / 2) % _DAY_MINUTES - _DAY_MINUTES / 2
        col["derive"] = {
            "reference": [columns[k[0]]["column"] for k in keys],
            "slope": [float(b) for b in coef],
            "clock": [bool(k[1]) for k in keys],
            "residuals": np.quantile(rest, np.linspace(0.0, 1.0, _RESIDUAL_GRID)),
            "clock_out": bool(clock),
            # the training values' form: their decimals (0: whole numbers), and HHMM midnight as 2400 rather than 0
            "decimals": written_decimals(y[~np.isnan(y)]),
            "midnight": 2400.0 if clock and col["grid"][0] > 0 and col["grid"][-1] == 2400 else 0.0,
            # the inputs' decimals: a binned input's drawn value lies between two training values (day 142.37),
            # which its column then rounds (142); the derived value is computed from the rounded one
            "input_decimals": [written_decimals(_known(arrays[columns[k[0]]["column"]])) for k in keys],
            # where an input is missing (a cancelled flight's delay), the share of rows whose value is missing too
            "missing_open": _missing_share(arrays, [columns[k[0]]["column"] for k in keys], col["column"]),
        }


def _missing_share(arrays: dict[str, np.ndarray], inputs: list[str], name: str) -> float:
    """The share of rows with a missing input where column ``name`` is missing too (0: no such row)."""
    open_ = np.zeros(len(arrays[name]), dtype=bool)
    for r in inputs:
        open_ |= np.isnan(np.asarray(arrays[r], dtype="float64"))
    return float(np.isnan(np.asarray(arrays[name], dtype="float64")[open_]).mean()) if open_.any() else 0.0


def _known(a: np.ndarray) -> np.ndarray:
    y = np.asarray(a, dtype="float64")
    return y[~np.isnan(y)]


def _derived_last(columns: list[dict[str, Any]], order: list[int]) -> list[int]:
    """``order`` with the derived columns (see ``_derivations``) moved to the end, each after its inputs."""
    names = {col["column"]: i for i, col in enumerate(columns)}
    rest = [i for i in order if "derive" not in columns[i]]
    todo = [i for i in order if "derive" in columns[i]]
    while todo:
        placed = set(rest)
        ready = [i for i in todo if all(names[r] in placed for r in columns[i]["derive"]["reference"])]
        if not ready:  # a cycle, which _derivations never makes: the rest as they were
            return rest + todo
        rest += ready
        todo = [i for i in todo if i not in ready]
    return rest


def _is_clock(y: np.ndarray) -> bool:
    """Whether a numeric column holds clock times written as HHMM (``1545`` for 15:45): whole numbers from 0 to
    2400 whose last two digits are all under 60, with at least ``_CLOCK_VALUES`` distinct values past 100 (20
    values whose last two digits are all under 60 by chance: one time in 30,000)."""
    y = y[~np.isnan(y)]
    if not len(y) or y.min() < 0 or y.max() > 2400 or not np.all(y == np.round(y)):
        return False
    return bool(np.all(y % 100 < 60) and len(np.unique(y[y >= 100])) >= _CLOCK_VALUES)


def _clock_minutes(y: np.ndarray) -> np.ndarray:
    """HHMM clock times as minutes after midnight (``1545`` -> 945)."""
    return 60.0 * np.floor(y / 100.0) + y % 100.0


def _exact_relations(
    x: np.ndarray, features: dict[tuple[int, bool], np.ndarray], period: float | None
) -> list[tuple[list[tuple[int, bool]], np.ndarray, np.ndarray]]:
    """Each one of ``features``, or else each two, of which ``x`` is a linear function (modulo ``period`` if
    given) on at least ``_DERIVE_SHARE`` of the rows where all are known.

    Fitted by trimmed least squares (see ``_trimmed_fit``) so that a few exceptions do not bend the
    coefficients; candidates are screened on ``_EXACT_SCREEN_ROWS`` rows and confirmed on all. Per relation:
    the features, their coefficients and the residual ``x - b . y`` (intercept included).
    """
    tol = 1e-6 * float(np.nanstd(x))
    if not tol > 0:
        return []
    screen = slice(None, None, max(1, len(x) // _EXACT_SCREEN_ROWS))
    for size in (1, 2):
        found = []
        subsets = itertools.combinations(features, size)
        if size == 2 and period is None:  # modulo a day, R^2 misreads the rows that wrap: every pair is tried
            subsets = _linear_pairs(x[screen], {k: v[screen] for k, v in features.items()})
        for subset in subsets:
            got = _trimmed_fit(x[screen], [features[k][screen] for k in subset], tol, period)
            if got is not None and got[0] >= _SCREEN_SHARE:
                got = _trimmed_fit(x, [features[k] for k in subset], tol, period)
                if got is not None and got[0] >= _DERIVE_SHARE:
                    found.append((list(subset), got[1], got[2]))
        if found:
            return found
    return []


def _linear_pairs(x: np.ndarray, features: dict[tuple[int, bool], np.ndarray]) -> list[tuple[Any, Any]]:
    """The pairs of ``features`` that explain at least ``_PAIR_R2`` of ``x``'s variance together (multiple R^2 from
    the pairwise correlations): a cheap screen before the trimmed fits, whose count grows with the square of the
    numeric columns (60 numeric columns of 5,000 rows: 31.6 CPU s without it, 1.3 s with it). An exact relation
    keeps a high R^2 though a few rows break it. Not used for clock times (modulo a day), whose rows that wrap
    past midnight are 1,440 minutes off a linear fit."""
    keys = list(features)
    if len(keys) < 2:
        return []
    known = ~np.isnan(x)
    columns = [x[known]]
    for k in keys:  # a missing input value as its mean: the screen only needs to be roughly right
        y = features[k][known]
        columns.append(np.where(np.isnan(y), np.nanmean(y) if (~np.isnan(y)).any() else 0.0, y))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(np.vstack(columns)) if known.sum() > 2 else np.full((len(columns),) * 2, np.nan)
    rx, ryy = r[0, 1:], r[1:, 1:]
    pairs = []
    for a, b in itertools.combinations(range(len(keys)), 2):
        denominator = 1.0 - ryy[a, b] ** 2
        if not denominator > 1e-9:  # one input is (nearly) the other: the single-input search covers it
            continue
        r2 = (rx[a] ** 2 + rx[b] ** 2 - 2.0 * rx[a] * rx[b] * ryy[a, b]) / denominator
        if np.isnan(r2) or r2 >= _PAIR_R2:
            pairs.append((keys[a], keys[b]))
    return pairs


def _trimmed_fit(
    x: np.ndarray, ys: list[np.ndarray], tol: float, period: float | None
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Least squares ``x ~ b . ys + c``, refitted on the three quarters of rows nearest the fit (twice): the share
    of rows (all known) where it is exact to ``tol`` (modulo ``period``), ``b``, and ``x - b . ys`` (modulo
    ``period``). None with fewer than 20 exact rows, or where they are mostly one value of ``x`` (a column that
    is 0 on most rows is 0 times anything there), or where an input is constant on them."""
    both = ~np.isnan(x)
    for y in ys:
        both &= ~np.isnan(y)
    if both.sum() < 20:
        return None
    xs = x[both]
    design = np.column_stack([*(y[both] for y in ys), np.ones(len(xs))])
    keep, target = np.ones(len(xs), dtype=bool), xs
    for _ in range(3):
        coef = np.linalg.lstsq(design[keep], target[keep], rcond=None)[0]
        off = xs - design @ coef
        if period is not None:  # each value moved by whole periods to the nearest the fit, then fitted again
            target = xs - period * np.round(off / period)
            off = target - design @ coef
        off = np.abs(off)
        keep = off <= np.quantile(off, 0.75)
    exact = off <= tol
    if exact.sum() < 20 or any(np.ptp(design[exact, k]) == 0 for k in range(len(ys))):
        return None
    _, counts = np.unique(xs[exact], return_counts=True)
    if counts.max() > 0.5 * exact.sum():
        return None
    rest = xs - design[:, :-1] @ coef[:-1]
    return float(exact.mean()), coef[:-1], rest % period if period is not None else rest


def _derive_values(
    col: dict[str, Any],
    values: np.ndarray,
    shift: np.ndarray,
    gen: torch.Generator,
    fine: np.ndarray | None,
    plan: dict[str, Any],
) -> np.ndarray:
    """Replace a derived column's ``values`` (in place) by ``shift + residual`` where its inputs are known (see
    ``_derivations``) and that lies in the plan's range, in the training values' form; returns every row's token
    (``fine``: the within-bin places).

    The residual is drawn from its quantiles: a constant for a relation that always holds. A clock time comes
    back as HHMM from minutes modulo a day. The range is imputation's "not missing" (the column's bounds) or a
    condition: where the computed value is outside it, the network's draw stays.
    """
    spec = col["derive"]
    grid = spec["residuals"]
    known = np.flatnonzero(~np.isnan(shift))
    u = torch.rand(len(known), generator=gen, dtype=torch.float64).numpy()
    v = shift[known] + np.interp(u, np.linspace(0.0, 1.0, len(grid)), grid)
    if spec["decimals"] is not None:  # None: more than 6 decimals, kept as computed
        v = np.round(v, spec["decimals"])  # 1.4e-14 off a + b is not a value of two decimals
    if spec["clock_out"]:
        v = np.mod(v, _DAY_MINUTES)
        v = 100.0 * np.floor(v / 60.0) + np.mod(v, 60.0)
        if spec["midnight"]:
            v[v == 0] = spec["midnight"]
    inside = (v >= plan["low"]) & (v <= plan["high"])
    values[known[inside]] = v[inside]
    # missing where an input is, as in the data (the network's draw there had missed it on 0.79 of rows, 1 epoch),
    # where the request allows 'missing'
    allowed = col["missing"] and (plan["weights"] is None or plan["weights"][-1] > 0)
    if allowed and spec.get("missing_open", 0.0) >= _MISSING_OPEN:
        values[np.isnan(shift)] = np.nan
    if col["type"] != "binned":
        return _encode(col, values)
    tokens, places = _encode(col, values, within=True)
    if fine is not None:
        fine[:] = places
    return tokens


def _relation_units(
    columns: list[dict[str, Any]], plans: list[dict[str, Any]], units: list[list[int]]
) -> list[list[int]]:
    """``units`` (see ``Autoregressive._passes``), with each input of a derived column whose value is fixed in
    some rows (given, or drawn first under a condition) marked in ``plans`` (``"relations"``), to be computed from
    it in those rows where it is drawn last of the inputs (see ``_hold_relations``).

    Only inputs that are not derived themselves are computed (the departure delay, not the schedule, which comes
    from the hour and minute); each goes after the relation's derived inputs, in a pass of its own.
    """
    names = {col["column"]: i for i, col in enumerate(columns)}
    fixed = [
        d
        for d, col in enumerate(columns)
        if "derive" in col and (plans[d]["weights"] is not None or plans[d]["known"] is not None)
    ]
    for d in fixed:
        inputs = [names[r] for r in columns[d]["derive"]["reference"]]
        solvable = [k for k in inputs if "derive" not in columns[k]]
        after = [k for k in inputs if k not in solvable]
        for k in solvable if after else ():
            where = {j: u for u, unit in enumerate(units) for j in unit}
            last = max(where[j] for j in after)
            if where[k] <= last:  # drawn before a derived input, or in its pass
                units = [[j for j in unit if j != k] for unit in units]
                units.insert(last + 1, [k])
                units = [unit for unit in units if unit]
    place = {j: (u, w) for u, unit in enumerate(units) for w, j in enumerate(unit)}
    for d in fixed:
        inputs = [names[r] for r in columns[d]["derive"]["reference"]]
        for k in inputs:
            if "derive" not in columns[k]:
                others = [(j, place[j] < place[k]) for j in inputs if j != k]
                plans[k].setdefault("relations", []).append((d, place[d] < place[k], others))
    return units


def _not_missing(col: dict[str, Any], plan: dict[str, Any]) -> bool:
    """Whether a column's condition allows every value token and excludes only 'missing' (imputation's: a missing
    cell is drawn non-missing). A derived column under it is computed after its inputs, where they are known (see
    ``_derive_values``): drawn first, its value had left the inputs' relation to chance (an impute of the total
    and one part held total = a + b only where the total came after its parts in the table)."""
    w = plan["weights"]
    values = w[:-1] if col["missing"] else w
    return bool(np.all(values == 1) and (not col["missing"] or w[-1] == 0))


def _given(plan: dict[str, Any], start: int, rows: np.ndarray) -> np.ndarray:
    """Whether a column's value is given in batch rows ``rows`` (the batch starting at ``start``)."""
    if plan["known"] is None:
        return np.zeros(len(rows), dtype=bool)
    return plan["known_mask"][start + rows]


def _hold_relations(
    model: Autoregressive,
    i: int,
    plans: list[dict[str, Any]],
    out: dict[str, np.ndarray],
    rows: np.ndarray | None,
    start: int,
    tokens: np.ndarray,
    values: np.ndarray,
    fine: np.ndarray | None,
    redraw: tuple,
) -> None:
    """Column ``i`` just drawn (``tokens``, ``values``, ``fine`` for the pass's ``rows``; changed in place) is an
    input of derived columns whose values are fixed in some rows (see ``_relation_units``): make their relations
    hold there, as they hold in the data (a condition on the total drew the total first; its parts were then drawn
    loosely around it, and total = a + b held on 0.2% of rows).

    Where the derived value and the relation's other inputs are known, the value of ``i`` is computed from them
    (see ``_invert``) when it is one the column can take: in its training range and its decimals, one of its values
    for a column of few values, inside its own condition; elsewhere the network's draw stays. Where the other input
    is still to be drawn, it will be computed in turn: ``i`` is redrawn from the same conditional, up to
    ``_SOLVE_TRIES`` times, in the rows where no value of the other input would make the relation hold (a
    total of 15 with a part of 40 needs the other part at -25, below its range). That is a draw from the network's
    conditional restricted to the values that allow the relation, without a loop that may never end: rows that
    find none keep their last draw, and their relation may not hold.
    """
    columns = model.columns_
    col = columns[i]
    batch = np.arange(len(values)) if rows is None else rows  # each value's row in the batch
    for d, d_done, others in plans[i]["relations"]:
        fixed = (_given(plans[d], start, batch) | d_done) & ~np.isnan(out[columns[d]["column"]][batch])
        ready = fixed.copy()
        for j, done in others:
            ready &= (_given(plans[j], start, batch) | done) & ~np.isnan(out[columns[j]["column"]][batch])
        solve = np.flatnonzero(ready)
        if len(solve):
            v, ok = _invert(columns, d, i, out, batch[solve], {col["column"]: values[solve]}, plans[i])
            _set_values(col, solve[ok], v[ok], tokens, values, fine)
        if len(others) != 1 or "derive" in columns[others[0][0]]:
            continue
        j, done = others[0]
        if done:
            continue
        open_ = np.flatnonzero(fixed & ~_given(plans[j], start, batch))
        name = col["column"]
        for attempt in range(_SOLVE_TRIES + 1):
            if not len(open_):
                break
            ok = _invert(columns, d, j, out, batch[open_], {name: values[open_]}, plans[j])[1]
            open_ = open_[~ok]
            if len(open_) and attempt < _SOLVE_TRIES:
                t, v, f = model._draw_column(*redraw, some=open_)
                tokens[open_], values[open_] = t, v
                if fine is not None:
                    fine[open_] = f


def _set_values(
    col: dict[str, Any], where: np.ndarray, v: np.ndarray, tokens: np.ndarray, values: np.ndarray, fine: np.ndarray
) -> None:
    """Set ``values[where] = v`` and the rows' tokens (and within-bin places) to match."""
    if not len(where):
        return
    values[where] = v
    if col["type"] == "binned":
        tokens[where], places = _encode(col, v, within=True)
        if fine is not None:
            fine[where] = places
    else:
        tokens[where] = _encode(col, v)


def _invert(
    columns: list[dict[str, Any]],
    d: int,
    k: int,
    out: dict[str, np.ndarray],
    rows: np.ndarray,
    current: dict[str, np.ndarray],
    plan: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``rows``, the value of input ``k`` that makes derived column ``d``'s relation hold (see
    ``_derivations``) given ``d``'s value and the other inputs' (from ``out``, or ``current``: values over
    ``rows``), and whether it is one ``k`` can take: inside its training range and ``plan``'s condition, in its
    training values' decimals, one of its values for a column of few values, a clock time for a clock.

    The relation's residual is its median (the constant of an exact relation). With clock arithmetic (modulo a
    day), the value is the one inside ``k``'s range (a delay of 1,430 minutes is 10 minutes early, if the delays
    go that far back), or a time of day for a clock input.
    """
    spec, target = columns[d]["derive"], columns[k]
    values = {
        name: np.asarray(current[name] if name in current else out[name][rows], dtype="float64")
        for name in [columns[d]["column"], *spec["reference"]]
    }
    x = values[columns[d]["column"]]
    if spec["decimals"] is not None:
        x = np.round(x, spec["decimals"])
    if spec["clock_out"]:
        x = _clock_minutes(x)
    n = len(spec["reference"])
    at = spec["reference"].index(target["column"])
    rest = [m for m in range(n) if m != at]
    decimals = spec.get("input_decimals") or [None] * n
    others = _reference_shift(
        {key: [spec[key][m] for m in rest] for key in ("reference", "slope", "clock")}
        | {"input_decimals": [decimals[m] for m in rest]},
        values,
    )
    grid = spec["residuals"]
    raw = (x - grid[len(grid) // 2] - others) / spec["slope"][at]
    lo, hi = max(float(target["grid"][0]), plan["low"]), min(float(target["grid"][-1]), plan["high"])
    with np.errstate(invalid="ignore"):
        if spec["clock"][at]:  # minutes after midnight, written as HHMM
            minutes = np.mod(raw, _DAY_MINUTES) if spec["clock_out"] else raw
            ok = (minutes >= 0) & (minutes <= _DAY_MINUTES)
            v = 100.0 * np.floor(minutes / 60.0) + np.mod(minutes, 60.0)
            if target["grid"][0] > 0 and target["grid"][-1] == 2400:  # midnight written 2400
                v[v == 0] = 2400.0
        elif spec["clock_out"]:  # the value k * a day / slope away that falls in the range
            period = _DAY_MINUTES / abs(spec["slope"][at])
            v = lo + np.mod(raw - lo, period)
            ok = np.ones(len(v), dtype=bool)
        else:
            v, ok = raw, np.ones(len(raw), dtype=bool)
        if decimals[at] is not None:
            rounded = np.round(v, decimals[at])
            ok &= np.abs(rounded - v) <= 1e-6 * np.maximum(1.0, np.abs(v))
            v = rounded
        ok &= np.isfinite(v) & (v >= lo) & (v <= hi)
        if target["type"] == "exact":
            nearest = target["values"][np.clip(_encode(target, np.where(ok, v, lo)), 0, len(target["values"]) - 1)]
            ok &= np.abs(nearest - v) <= 1e-9 * np.maximum(1.0, np.abs(v))
            v = np.where(ok, nearest, v)
    return v, ok


def _references(columns: list[dict[str, Any]], arrays: dict[str, np.ndarray], order: list[int]) -> None:
    """Give each binned column the earlier numeric columns (in the sampling ``order``) that predict it linearly.

    A column ``x`` that is ``b . y + r`` for up to ``_MAX_REFERENCES`` earlier columns ``y`` (least squares, chosen
    one by one), with a residual ``r`` of at most ``_REFERENCE_SPREAD`` of ``x``'s spread, keeps their names, the
    weights ``b`` and ``r``'s quantiles (intercept included): sampling can then draw ``x`` inside its drawn bin from
    ``r`` given ``y`` (see ``_from_reference``), if that beats the network there (``Autoregressive._choose_references``
    drops the references otherwise). The network places a value inside its bin with three numbers per row (see
    ``_fine``), too coarse for a near-deterministic relation in a wide tail bin: on flights, arrival delay =
    departure delay + a residual of spread 16 minutes, but departures over 150 minutes late had arrival
    residuals of spread 184 minutes in the samples (the top arrival bin spans 155 to 1,272 minutes).
    """
    n = len(next(iter(arrays.values()))) if arrays else 0
    step = max(1, n // _REFERENCE_ROWS)  # every step-th row: enough to measure a spread and its quantiles
    for rank, j in enumerate(order):
        col = columns[j]
        if not _can_reference(col) or "derive" in col:
            continue
        x = np.asarray(arrays[col["column"]][::step], dtype="float64")
        spread_x = np.nanstd(x)
        candidates = [columns[i]["column"] for i in order[:rank] if columns[i]["type"] != "discrete"]
        ys = {name: np.asarray(arrays[name][::step], dtype="float64") for name in candidates}
        chosen: list[str] = []
        best: tuple[float, np.ndarray, np.ndarray] | None = None
        for _ in range(_MAX_REFERENCES):
            step_best = None
            for name in candidates:
                if name in chosen:
                    continue
                fit = _residual(x, [ys[c] for c in [*chosen, name]])
                if fit is not None and (step_best is None or fit[0] < step_best[1][0]):
                    step_best = (name, fit)
            # a reference must cut the spread left by the others by a tenth at least
            if step_best is None or (best is not None and step_best[1][0] >= 0.9 * best[0]):
                break
            chosen.append(step_best[0])
            best = step_best[1]
        if best is not None and spread_x > 0 and best[0] <= _REFERENCE_SPREAD * spread_x:
            col["reference"], col["slope"] = chosen, [float(b) for b in best[1]]
            col["residuals"] = np.quantile(best[2], np.linspace(0.0, 1.0, _RESIDUAL_GRID))


def _can_reference(col: dict[str, Any]) -> bool:
    """A binned column, or an exact one of more than ``_REFERENCE_VALUES`` values, may draw from a reference."""
    return col["type"] == "binned" or (col["type"] == "exact" and len(col["values"]) > _REFERENCE_VALUES)


def _residual(x: np.ndarray, ys: list[np.ndarray]) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Least squares ``x ~ b . ys + c`` on the rows where all are known: the residual's spread, ``b`` and
    ``x - b . ys`` (None: fewer than 20 such rows)."""
    both = ~np.isnan(x)
    for y in ys:
        both &= ~np.isnan(y)
    if both.sum() < 20:
        return None
    design = np.column_stack([*(y[both] for y in ys), np.ones(int(both.sum()))])
    coef = np.linalg.lstsq(design, x[both], rcond=None)[0]
    rest = x[both] - design[:, :-1] @ coef[:-1]
    return float(np.std(rest)), coef[:-1], rest


def _residual_nll(col: dict[str, Any], tokens: np.ndarray, fine: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Per row, the negative log probability of its fine bin ``fine`` inside its coarse bin (from ``tokens``) under
    the residual given the references' ``shift``; NaN where ``_from_reference`` would not draw (see there).
    For an exact column, the probability of its value token ``tokens`` (``fine`` unused; see ``_exact_cells``)."""
    if col["type"] == "exact":
        probs = _exact_cells(col, np.where(np.isnan(shift), 0.0, shift))
        ok = (tokens >= 0) & (tokens < len(col["values"])) & ~np.isnan(shift)
        p = probs[np.arange(len(tokens)), np.where(ok, tokens, 0)]
        return np.where(ok, -np.log(np.maximum(p, 1e-4)), np.nan)
    q, n_bins, grid = col["quantiles"], col["n_bins"], col["residuals"]
    coarse = tokens - len(col["masses"])
    ok = (coarse >= 0) & (coarse < n_bins) & (fine >= 0) & ~np.isnan(shift)
    c, k, mu = np.where(ok, coarse, 0), np.where(ok, fine, 0), np.where(ok, shift, 0.0)
    levels = np.linspace(0.0, 1.0, len(grid))

    def cdf(edge: np.ndarray) -> np.ndarray:
        return np.interp(q[edge] - mu, grid, levels, left=0.0, right=1.0)

    whole = cdf((c + 1) * n_bins) - cdf(c * n_bins)
    part = cdf(c * n_bins + k + 1) - cdf(c * n_bins + k)
    # rows the residual would draw (see _from_reference), in a fine bin of positive width: a value tied over several
    # fine bins (integers in a narrow bin) is one point, to which the residual gives no mass
    ok &= (whole > 1e-3) & (q[(c + 1) * n_bins] > q[c * n_bins]) & _open_bins(col)[c]
    ok &= q[c * n_bins + k + 1] > q[c * n_bins + k]
    # a fine bin the residual cannot reach: probability floored at 1e-4 (9.2 nats) instead of 0
    return np.where(ok, -np.log(np.maximum(part / np.where(ok, whole, 1.0), 1e-4)), np.nan)


def _open_bins(col: dict[str, Any]) -> np.ndarray:
    """Per coarse bin of a binned column: True if no point mass lies strictly inside it.

    A bin around a run of point masses (flights' arrival delays of -23 and 10 minutes, either side of the masses
    -22 to 9) holds values at its two ends only; a residual drawn across it would put values between them, which
    are the masses' (their own tokens), and so shift the masses' shares.
    """
    edges = col["quantiles"][:: col["n_bins"]]
    masses = np.asarray(col["masses"], dtype="float64")
    inside = (masses[None, :] > edges[:-1, None]) & (masses[None, :] < edges[1:, None])
    return ~inside.any(1)


def _reference_shift(col: dict[str, Any], out: dict[str, np.ndarray]) -> np.ndarray:
    """Per row, ``b . y`` over a column's references' values drawn or given so far (NaN: one is not known); a
    reference read as a clock time (``col["clock"]``, see ``_derivations``) in minutes after midnight, and rounded
    to its training values' decimals where ``col["input_decimals"]`` gives them (a derived column's inputs)."""
    clock = col.get("clock") or [False] * len(col["reference"])
    decimals = col.get("input_decimals") or [None] * len(col["reference"])  # none: a model saved before them
    return sum(
        w * (_clock_minutes(y) if c else y)
        for y, w, c in (
            (np.asarray(out[name], dtype="float64") if d is None else np.round(out[name], d), w, c)
            for name, w, c, d in zip(col["reference"], col["slope"], clock, decimals, strict=True)
        )
    )


def _n_tokens(col: dict[str, Any]) -> int:
    """A column's tokens: levels (+ 'other'), values, or point masses + bins; + 'missing'."""
    if col["type"] == "discrete":
        return len(col["kept"]) + (len(col["pool"]) > 0) + col["missing"]
    if col["type"] == "exact":
        return len(col["values"]) + col["missing"]
    return len(col["masses"]) + col["n_bins"] + col["missing"]


def _positions(col: dict[str, Any]) -> np.ndarray:
    """Each token's place among the column's training values, on [-1, 1], then 0 for 'missing' and 'unknown'.

    A bin is placed by its median, so the position says no more about a row than its token does (a position of
    the exact value would single out rows, which a small table's network then memorises).
    """
    if col["type"] == "discrete":
        return np.zeros(_n_tokens(col) + 1)
    if col["type"] == "exact":
        points = col["values"]
    else:
        n_bins = col["n_bins"]
        points = np.concatenate([col["masses"], col["quantiles"][np.arange(n_bins) * n_bins + n_bins // 2]])
    grid = col["grid"]
    place = np.zeros(len(points)) if grid[-1] == grid[0] else np.interp(points, grid, np.linspace(-1, 1, len(grid)))
    return np.concatenate([place, [0.0] * (col["missing"] + 1)])


def _ordinal(col: dict[str, Any]) -> np.ndarray:
    """Which of a column's tokens are values on a scale (all but 'missing', for numeric columns)."""
    ordered = np.full(_n_tokens(col), col["type"] != "discrete")
    if col["missing"]:
        ordered[-1] = False
    return ordered


def _encode(
    col: dict[str, Any], a: np.ndarray, rng: np.random.Generator | None = None, within: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The token of each value; -1 for a value without one (missing, where training had no missing value).

    A value tied over several quantile bins goes to one of them at random with ``rng`` (training), to the
    middle one without (a given value, as input to the network). With ``within``, also each value's fine
    quantile bin inside its coarse bin, 0 .. n_bins - 1 (-1 for a token that is not a bin).
    """
    n_tok = _n_tokens(col)
    missing_token = n_tok - 1 if col["missing"] else -1
    if within and col["type"] != "binned":
        return _encode(col, a, rng), np.full(len(a), -1, dtype="int64")
    if col["type"] == "discrete":
        kept = col["kept"]
        lookup = np.full(col["n_levels"] + 1, -1, dtype="int64")
        if len(col["pool"]):
            lookup[:-1] = len(kept)  # every level not kept (rare, or never seen) maps to the shared token
        lookup[kept] = np.arange(len(kept))
        lookup[-1] = missing_token
        codes = np.asarray(a, dtype="int64")
        return lookup[np.where(codes < 0, col["n_levels"], codes)]
    x = np.asarray(a, dtype="float64")
    nan = np.isnan(x)
    if col["type"] == "exact":
        values = col["values"]
        xs = np.where(nan, values[0], x)
        above = np.clip(np.searchsorted(values, xs), 0, len(values) - 1)
        below = np.clip(above - 1, 0, len(values) - 1)
        nearest = np.where(np.abs(values[below] - xs) <= np.abs(values[above] - xs), below, above)
        return np.where(nan, missing_token, nearest).astype("int64")
    masses, q, n_bins = col["masses"], col["quantiles"], col["n_bins"]
    xs = np.where(nan, q[0], x)
    mass_pos = np.clip(np.searchsorted(masses, xs), 0, max(len(masses) - 1, 0))
    is_mass = masses[mass_pos] == xs if len(masses) else np.zeros(len(x), dtype=bool)
    level = _level(col, xs, rng)
    coarse = np.minimum((level * n_bins).astype("int64"), n_bins - 1)
    tokens = np.where(nan, missing_token, np.where(is_mass, mass_pos, len(masses) + coarse)).astype("int64")
    if not within:
        return tokens
    fine = np.clip((level * n_bins * n_bins).astype("int64") - coarse * n_bins, 0, n_bins - 1)
    return tokens, np.where(nan | is_mass, -1, fine).astype("int64")


def _level(col: dict[str, Any], xs: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Each value's quantile level on [0, 1]: inside a fine bin by interpolation, anywhere on a plateau of ties.

    The same ``rng`` draws give the same levels, so the token and the within-bin place of a value agree.
    """
    q = col["quantiles"]
    g = len(q) - 1
    lo, hi = np.searchsorted(q, xs, side="left"), np.searchsorted(q, xs, side="right")
    j = np.clip(lo - 1, 0, g - 1)
    width = q[j + 1] - q[j]
    level = (j + np.clip((xs - q[j]) / np.where(width > 0, width, 1.0), 0.0, 1.0)) / g
    u = rng.random(len(xs)) if rng is not None else np.full(len(xs), 0.5)
    return np.where(hi > lo, (lo + u * (hi - 1 - lo)) / g, level)


def _column_request(col: dict[str, Any], request: SampleRequest) -> dict[str, Any]:
    """What a request asks of one column: given values, and each token's allowed share of mass (None: all)."""
    name = col["column"]
    weights = fine = None
    low, high = -math.inf, math.inf
    if name in request.allowed:
        weights = _allowed_weights(col, request.allowed[name])
    elif name in request.ranges:
        low, high = request.ranges[name]
        weights, fine = _range_weights(col, low, high)
    if weights is not None and not (weights > 0).any():
        raise ParameterError(
            f"conditions {name!r}: no value the model learned satisfies the condition "
            "(it only generates values and levels seen in training); widen the condition"
        )
    known, known_mask = request.known.get(name), request.known_mask.get(name)
    if known is not None and known_mask is None:
        known_mask = np.ones(request.n, dtype=bool)
    return {
        "weights": weights,
        "fine": fine,
        "low": low,
        "high": high,
        "allowed": request.allowed.get(name),
        "known": known,
        "known_mask": known_mask,
    }


def _allowed_weights(col: dict[str, Any], codes: np.ndarray) -> np.ndarray:
    """1 for the tokens of a discrete column that a set of allowed codes (-1 = missing) permits, else 0."""
    codes = np.asarray(codes, dtype="int64")
    w = np.zeros(_n_tokens(col))
    w[: len(col["kept"])] = np.isin(col["kept"], codes)
    if len(col["pool"]):
        w[len(col["kept"])] = np.isin(col["pool"], codes).any()
    if col["missing"]:
        w[-1] = (codes < 0).any()
    return w


def _range_weights(col: dict[str, Any], low: float, high: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Each token's share of mass inside [low, high]; for binned columns also each fine bin's [bin, fine]."""
    w = np.zeros(_n_tokens(col))
    if col["type"] == "exact":
        values = col["values"]
        w[: len(values)] = (values >= low) & (values <= high)
        return w, None
    masses, q, n_bins = col["masses"], col["quantiles"], col["n_bins"]
    left, right = q[:-1], q[1:]
    inside = np.clip(np.minimum(right, high) - np.maximum(left, low), 0.0, None)
    share = np.where(right > left, inside / np.where(right > left, right - left, 1.0), (left >= low) & (left <= high))
    if not share.any():  # a range of one point inside a bin: every bin touching it, equally
        share = ((left <= high) & (right >= low)).astype("float64")
    fine = share.reshape(n_bins, n_bins)
    w[: len(masses)] = (masses >= low) & (masses <= high)
    w[len(masses) : len(masses) + n_bins] = fine.mean(1)
    return w, fine


def _decode(
    col: dict[str, Any],
    tokens: np.ndarray,
    plan: dict[str, Any],
    gen: torch.Generator,
    tilt: torch.Tensor | None = None,
    temperature: float = 1.0,
    fine: np.ndarray | None = None,
    ref: np.ndarray | None = None,
) -> np.ndarray:
    """Values of drawn tokens: a level (a pooled one by frequency), a value, or a value within a bin.

    Within a coarse bin, a fine quantile bin is drawn from each row's within-bin coefficients ``tilt`` [rows, 3]
    (see ``_fine``; None: uniformly), times its in-range share under a range condition, then a value uniformly
    between the fine bin's edges; or, for a column with reference columns, from the residual shifted by ``ref``
    (their weighted sum, see ``_reference_shift``; NaN where not known). ``fine`` (binned columns) receives
    each row's fine bin (-1: not a bin).
    """
    n_tok = _n_tokens(col)
    if col["type"] == "discrete":
        kept, pool = col["kept"], col["pool"]
        out = np.full(len(tokens), -1, dtype="int64")
        is_kept = tokens < len(kept)
        out[is_kept] = kept[tokens[is_kept]]
        pooled = np.flatnonzero(tokens == len(kept)) if len(pool) else np.zeros(0, dtype="int64")
        if len(pooled):
            allowed = plan["allowed"]
            cum = np.cumsum(col["pool_counts"] * (np.isin(pool, allowed) if allowed is not None else 1.0))
            u = torch.rand(len(pooled), generator=gen, dtype=torch.float64).numpy() * cum[-1]
            out[pooled] = pool[np.minimum(np.searchsorted(cum, u, side="right"), len(pool) - 1)]
        return out
    missing = tokens == n_tok - 1 if col["missing"] else np.zeros(len(tokens), dtype=bool)
    if col["type"] == "exact":
        values = col["values"]
        return np.where(missing, np.nan, values[np.minimum(tokens, len(values) - 1)])
    masses, q, n_bins = col["masses"], col["quantiles"], col["n_bins"]
    out = np.full(len(tokens), np.nan)
    is_mass = tokens < len(masses)
    out[is_mass] = masses[tokens[is_mass]]
    rows = np.flatnonzero(~is_mass & ~missing)
    coarse = tokens[rows] - len(masses)
    u = torch.rand(2, len(rows), generator=gen, dtype=torch.float64).numpy()
    if plan["fine"] is None and tilt is None:  # equal-mass fine bins: a uniform level within the coarse bin
        level = (coarse + u[0]) * n_bins
        j = np.minimum(level.astype("int64"), len(q) - 2)
        out[rows] = q[j] + (level - j) * (q[j + 1] - q[j])
        if fine is not None:
            fine[rows] = np.clip(j - coarse * n_bins, 0, n_bins - 1)
        return out
    picked = torch.as_tensor(rows)
    coarse_t = torch.as_tensor(coarse)
    if tilt is not None and plan["fine"] is None:
        k = _fine_draw(tilt[picked], coarse_t, n_bins, temperature, gen)
    else:
        logits = torch.zeros(len(rows), n_bins) if tilt is None else _fine(tilt[picked].float(), coarse_t, n_bins)
        if plan["fine"] is not None:  # a range condition: each fine bin by its in-range share
            with np.errstate(divide="ignore"):
                logits = logits + torch.as_tensor(np.log(plan["fine"][coarse]), dtype=torch.float32)
        k = _draw(logits, None, temperature, gen)
    if fine is not None:
        fine[rows] = k
    j = coarse * n_bins + k
    lo, hi = np.maximum(q[j], plan["low"]), np.minimum(q[j + 1], plan["high"])
    out[rows] = np.clip(lo + u[1] * (hi - lo), lo, hi)
    if ref is not None:
        _from_reference(col, out, rows, coarse, ref[rows], plan, gen, fine)
    return out


def _from_reference(
    col: dict[str, Any],
    out: np.ndarray,
    rows: np.ndarray,
    coarse: np.ndarray,
    ref: np.ndarray,
    plan: dict[str, Any],
    gen: torch.Generator,
    fine: np.ndarray | None,
) -> None:
    """Redraw ``out[rows]`` inside their coarse bins as ``ref + residual`` (see ``_references``).

    The residual is drawn from its empirical quantile function, truncated to the bin (and to a range condition):
    ``v = ref + Q(u)``, ``u`` uniform between the residual CDF at the bin's two edges. Rows whose references are
    not all known, or whose bin the residual reaches with less than 0.1% of its mass, or whose bin has point masses
    inside (see ``_open_bins``), keep their draw.
    """
    q, n_bins, grid = col["quantiles"], col["n_bins"], col["residuals"]
    lo = np.maximum(q[coarse * n_bins], plan["low"])
    hi = np.minimum(q[(coarse + 1) * n_bins], plan["high"])
    levels = np.linspace(0.0, 1.0, len(grid))
    known = ~np.isnan(ref)
    shift = np.where(known, ref, 0.0)
    f_lo = np.interp(lo - shift, grid, levels, left=0.0, right=1.0)
    f_hi = np.interp(hi - shift, grid, levels, left=0.0, right=1.0)
    u = torch.rand(len(rows), generator=gen, dtype=torch.float64).numpy()
    use = np.flatnonzero(known & (f_hi - f_lo > 1e-3) & (hi > lo) & _open_bins(col)[coarse])
    if not len(use):
        return
    value = shift[use] + np.interp(f_lo[use] + u[use] * (f_hi[use] - f_lo[use]), levels, grid)
    value = np.clip(value, lo[use], hi[use])
    out[rows[use]] = value
    if fine is not None:  # the fine quantile bin the value fell in: the place later columns see
        level = np.searchsorted(q, value, side="right") - 1
        fine[rows[use]] = np.clip(level - coarse[use] * n_bins, 0, n_bins - 1)


def _exact_cells(col: dict[str, Any], shift: np.ndarray) -> np.ndarray:
    """[rows, values]: each value's probability under ``shift + residual`` for an exact column with references.

    A value's cell runs from the midpoint with the value below to the midpoint with the value above (the first
    and last cells are open), so the cells cover the line and the probabilities sum to 1 per row.
    """
    values, grid = col["values"], col["residuals"]
    edges = np.concatenate([[-np.inf], (values[1:] + values[:-1]) / 2, [np.inf]])
    cdf = np.interp(edges[None, :] - shift[:, None], grid, np.linspace(0.0, 1.0, len(grid)), left=0.0, right=1.0)
    return np.diff(cdf, axis=1)


def _exact_from_reference(
    col: dict[str, Any],
    tokens: np.ndarray,
    ref: np.ndarray,
    weights: np.ndarray | None,
    bias: np.ndarray,
    temperature: float,
    gen: torch.Generator,
) -> None:
    """Redraw an exact column's value ``tokens`` (in place) from ``ref + residual`` (see ``_references``).

    Weather's dew point is a function of temperature and humidity: a linear fit on them leaves a residual of
    spread 1.3 degrees, where the network's conditional, one of 87 tokens, erred by 2.75 given the real other
    columns. Each value's probability (see ``_exact_cells``) is times ``exp(bias)``, the column's calibration
    biases, so that calibration keeps its marginal (on weather, the dew point's KS distance to the data over 20,000
    rows: 0.031 without, as the linear fit's residual ignores where in the range a row is); a condition's weights
    and the temperature apply as for the network. Only the values the residual reaches are computed. Rows whose
    references are not all known, that drew 'missing', or where the residual reaches no allowed value keep their
    draw.
    """
    values, grid = col["values"], col["residuals"]
    n_values = len(values)
    rows = np.flatnonzero(~np.isnan(ref) & (tokens >= 0) & (tokens < n_values))
    if not len(rows):
        return
    u = torch.rand(len(rows), generator=gen, dtype=torch.float64).numpy()
    shift = ref[rows]
    mid = (values[1:] + values[:-1]) / 2
    edges = np.concatenate([[-np.inf], mid, [np.inf]])  # value k's cell: edges[k] .. edges[k + 1]
    first = np.searchsorted(mid, shift + grid[0], side="right")  # the value whose cell holds the lowest residual
    reach = np.searchsorted(mid, shift + grid[-1], side="right") - first + 1
    window = np.arange(int(reach.max()) + 1)
    k = np.minimum(first[:, None] + window, n_values)  # [rows, window + 1]: the edges of the values within reach
    cdf = np.interp(edges[k] - shift[:, None], grid, np.linspace(0.0, 1.0, len(grid)), left=0.0, right=1.0)
    k = k[:, :-1]
    probs = np.where(window[None, :-1] < reach[:, None], np.diff(cdf, axis=1), 0.0)
    k = np.minimum(k, n_values - 1)
    if weights is not None:
        probs = probs * weights[k]
    use = probs.sum(1) > 1e-3
    probs = probs * np.exp(bias[k])
    if temperature != 1.0:
        probs = probs ** (1.0 / temperature)
    cum = np.cumsum(probs, axis=1)
    pick = (cum <= (u * cum[:, -1])[:, None]).sum(1)
    pick = k[np.arange(len(rows)), np.minimum(pick, k.shape[1] - 1)]
    tokens[rows[use]] = pick[use]
