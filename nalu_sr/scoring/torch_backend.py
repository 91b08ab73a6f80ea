"""Comparison backend: the snapped networks run as dense torch layers, many candidates at once.

A chunk of candidates becomes one stacked network: a signed-sum layer (the snapped NAU weights,
one row of {-1, 0, 1} per factor slot) and a product layer over each term's factor slots (the
snapped NMU, whose unused slots pass the neutral factor 1). This is what evaluating the trained
networks themselves costs, the baseline the compiled kernel is measured against. Coefficients
come from the same normal-equations solve as in the other backends, on a Gram matrix from batched
matmuls; sums are taken in torch's order, so results agree with NumPy's to about 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .normal_equations import solve_normal_equations
from .packing import PackedCandidates
from .rows import TRAIN, SplitRows

#: Largest number of float64 values one chunk's factor tensor may hold (128 MiB).
CHUNK_BUDGET = 2**24


@dataclass
class _Split:
    features: torch.Tensor
    y: torch.Tensor
    non_finite: torch.Tensor | None
    weights: torch.Tensor | None = None

    @classmethod
    def from_rows(cls, rows: SplitRows, s: int) -> _Split:
        features, y = (torch.from_numpy(a) for a in rows.split(s))
        weights = rows.split_weights(s)
        weights = None if weights is None else torch.from_numpy(weights)
        features = features.T.contiguous()
        finite = torch.isfinite(features)
        if bool(finite.all()):
            return cls(features, y, None, weights)
        # Zeros stand in for non-finite inputs in the dense layer (where 0 * inf would spoil
        # every factor); the factors that read them are marked NaN separately.
        return cls(torch.where(finite, features, 0.0), y, (~finite).to(features.dtype), weights)


def residual_sums(
    packed: PackedCandidates,
    rows: SplitRows,
    coefficients: np.ndarray,
    fit: bool,
    fit_intercept: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as :func:`nalu_sr.scoring.numpy_backend.residual_sums`."""
    n = packed.n_candidates
    square_sum = np.zeros((n, 3))
    max_abs = np.zeros((n, 3))
    splits = [_Split.from_rows(rows, s) for s in range(3)]
    slots = max(packed.max_terms, 1) * max(int(np.diff(packed.factor_offsets).max(initial=0)), 1)
    chunk = max(CHUNK_BUDGET // (slots * max(int(rows.counts.max()), 1)), 1)
    for start in range(0, n, chunk):
        block = slice(start, min(start + chunk, n))
        network = SnappedNetworks.from_packed(packed, block, rows.features.shape[0])
        train_terms = None
        if fit:
            data = splits[TRAIN]
            train_terms = network.terms(data.features, data.non_finite)
            gram = network.gram(train_terms, data.y, data.weights)
            for c, i in enumerate(range(block.start, block.stop)):
                used = np.r_[0 : network.n_terms[c] + 1, network.width + 1]
                matrix = gram[c][np.ix_(used, used)]
                solve_normal_equations(matrix, bool(fit_intercept[i]), coefficients[i])
        # NaN marks padding past a candidate's terms; a NaN from a failed fit must stay.
        weights = np.zeros((network.n_terms.size, network.width + 1))
        used = min(weights.shape[1], coefficients.shape[1])
        padding = np.arange(used) > network.n_terms[:, None]
        weights[:, :used] = np.where(padding, 0.0, coefficients[block, :used])
        weights = torch.from_numpy(weights)
        for s, data in enumerate(splits):
            if data.y.numel() == 0:
                continue
            if s == TRAIN and train_terms is not None:
                terms = train_terms
            else:
                terms = network.terms(data.features, data.non_finite)
            residual = data.y[:, None] - network.output(terms, weights)
            squares = residual * residual
            if data.weights is not None:
                squares = squares * data.weights[:, None]
            square_sum[block, s] = squares.sum(dim=0).numpy()
            max_abs[block, s] = residual.abs().amax(dim=0).numpy()
    return square_sum, max_abs


@dataclass
class SnappedNetworks:
    """A block of candidates as one stacked two-layer network.

    Attributes
    ----------
    sums : Tensor of shape (K * C * T, n_features)
        Signed-sum weights; row ``(k, c, t)`` is factor slot ``k`` of term ``t`` of candidate
        ``c``, all zeros for an unused slot.
    unused : Tensor of shape (K * C * T,)
        1 for an unused slot and 0 otherwise: added to the sum, it makes an unused slot the
        neutral factor 1.
    powers : Tensor of shape (K * C * T,) or None
        The exponent each slot's sum is raised to (1 for unused slots); ``None`` when every
        exponent is 1.
    n_terms : ndarray of int64, shape (C,)
    n_factor_slots : int
        K, the most factors of any term in the block.
    width : int
        T, the most terms of any candidate in the block.
    """

    sums: torch.Tensor
    unused: torch.Tensor
    powers: torch.Tensor | None
    n_terms: np.ndarray
    n_factor_slots: int
    width: int

    @classmethod
    def from_packed(
        cls, packed: PackedCandidates, block: slice, n_features: int
    ) -> SnappedNetworks:
        n_terms = packed.n_terms[block]
        terms = np.arange(packed.term_offsets[block.start], packed.term_offsets[block.stop])
        n_factors = packed.factor_offsets[terms + 1] - packed.factor_offsets[terms]
        shape = (max(int(n_factors.max(initial=0)), 1), n_terms.size, max(int(n_terms.max()), 1))
        candidate = np.repeat(np.arange(n_terms.size), n_terms)
        slot = terms - np.repeat(packed.term_offsets[block], n_terms)
        sums = np.zeros((*shape, n_features))
        used = np.zeros(shape, dtype=bool)
        powers = np.ones(shape)
        for t, c, i in zip(terms, candidate, slot):
            for k, f in enumerate(range(packed.factor_offsets[t], packed.factor_offsets[t + 1])):
                used[k, c, i] = True
                powers[k, c, i] = packed.power[f]
                entries = slice(packed.entry_offsets[f], packed.entry_offsets[f + 1])
                sums[k, c, i, packed.feature[entries]] = packed.sign[entries]
        return cls(
            sums=torch.from_numpy(sums.reshape(-1, n_features)),
            unused=torch.from_numpy((~used).reshape(-1).astype(np.float64)),
            powers=torch.from_numpy(powers.reshape(-1)) if np.any(powers != 1) else None,
            n_terms=n_terms,
            n_factor_slots=shape[0],
            width=shape[2],
        )

    def terms(self, features: torch.Tensor, non_finite: torch.Tensor | None) -> torch.Tensor:
        """Term values, shape (n_rows, C, T), from features of shape (n_rows, n_features).

        ``non_finite`` (1 where a feature is not finite) makes every term that reads one NaN.
        """
        n_rows, slots = features.shape[0], self.n_factor_slots
        factors = torch.addmm(self.unused, features, self.sums.T)
        if self.powers is not None:
            factors = factors.pow(self.powers)
        factors = factors.view(n_rows, slots, -1)
        values = factors[:, 0] * factors[:, 1] if slots > 1 else factors[:, 0].clone()
        for k in range(2, slots):
            values.mul_(factors[:, k])
        if non_finite is not None:
            touched = (non_finite @ self.sums.abs().T).view(n_rows, slots, -1).amax(dim=1) > 0
            values = torch.where(touched, torch.nan, values)
        return values.view(n_rows, self.n_terms.size, -1)

    def gram(
        self, terms: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
    ) -> np.ndarray:
        """Gram matrices of ``[1, terms, y]`` over the rows, shape (C, T + 2, T + 2), each
        product weighted by its row's weight when ``weights`` (n_rows,) are given."""
        n_rows, n_candidates, width = terms.shape
        design = torch.cat(
            [
                torch.ones(n_rows, n_candidates, 1, dtype=terms.dtype),
                terms,
                y[:, None, None].expand(n_rows, n_candidates, 1),
            ],
            dim=-1,
        ).permute(1, 2, 0)
        weighted = design if weights is None else design * weights
        return torch.bmm(weighted, design.transpose(1, 2)).numpy()

    def output(self, terms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``c0 + sum_t c_t * term_t`` per candidate; a term with ``c_t == 0`` is left out."""
        slopes = weights[:, 1 : terms.shape[-1] + 1]
        prediction = weights[:, 0] + torch.einsum("rct,ct->rc", terms, slopes)
        if not bool(torch.isfinite(prediction).all()):
            # 0 * inf is NaN: a term left out must not spoil the sum by being infinite.
            terms = torch.where(slopes != 0, terms, 0.0)
            prediction = weights[:, 0] + torch.einsum("rct,ct->rc", terms, slopes)
        return prediction
