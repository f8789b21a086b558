"""Type stubs of the native module hinv._hinv (import everything from `hinv`)."""

from typing import Any, Iterator, Literal, Mapping, Sequence, Union

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
Weights = Union[Mapping[str, ArrayLike], Sequence[ArrayLike], ArrayLike]
Elimination = Literal["auto", "interleaved", "parameters_first"]

__version__: str

class Network:
    """A layered network built from its spec (docs/spec.md)."""

    @staticmethod
    def from_spec(spec: Union[Mapping[str, Any], str]) -> Network: ...
    @property
    def spec(self) -> dict[str, Any]: ...
    @property
    def input_dim(self) -> int: ...
    @property
    def num_params(self) -> int: ...
    @property
    def num_layers(self) -> int: ...
    @property
    def loss_kind(self) -> Literal["cross_entropy", "mse"]: ...
    def parameter_shapes(self) -> list[tuple[str, list[int]]]: ...
    def init_params(self, seed: int = 0) -> npt.NDArray[np.float64]: ...
    def flatten(self, weights: Weights) -> npt.NDArray[np.float64]: ...
    def unflatten(self, v: ArrayLike) -> dict[str, npt.NDArray[np.float64]]: ...
    def loss(self, weights: Weights, x: ArrayLike, y: ArrayLike) -> float: ...

class Curvature:
    """The derivative blocks of a network's batch loss at given weights."""

    def __init__(
        self,
        net: Network,
        weights: Weights,
        x: ArrayLike,
        y: ArrayLike,
        *,
        memory_limit: int | None = None,
        curvature: Literal["hessian", "ggn"] = "hessian",
    ) -> None: ...
    @property
    def loss(self) -> float: ...
    @property
    def gradient(self) -> npt.NDArray[np.float64]: ...
    @property
    def num_params(self) -> int: ...
    @property
    def num_layers(self) -> int: ...
    def hvp(self, v: ArrayLike) -> npt.NDArray[np.float64]: ...
    @property
    def curvature(self) -> Literal["hessian", "ggn"]: ...
    def factor(
        self,
        eps: float,
        *,
        route: Literal["auto", "lifted", "woodbury"] = "auto",
        allow_singular: bool = False,
        memory_limit: int | None = None,
        elimination: Elimination = "auto",
    ) -> Factorization: ...
    def route_costs(self) -> RouteCosts: ...
    def count_eigenvalues_below(self, t: float, *, elimination: Elimination = "auto") -> EigenvalueCount: ...
    def lambda_min(
        self, *, rel_tol: float = 1e-10, abs_tol: float = 1e-12, elimination: Elimination = "auto"
    ) -> Eigenvalue: ...
    def lambda_max(
        self, *, rel_tol: float = 1e-10, abs_tol: float = 1e-12, elimination: Elimination = "auto"
    ) -> Eigenvalue: ...
    def count_in(self, lower: float, upper: float, *, elimination: Elimination = "auto") -> IntervalCount: ...
    def trust_region_step(
        self, radius: float, *, tolerance: float = 1e-12, elimination: Elimination = "auto"
    ) -> TrustRegionStep: ...

class Factorization:
    """C + eps I factored (C: the curvature); reusable for any number of right-hand sides."""

    def solve(
        self,
        b: ArrayLike,
        *,
        tolerance: float | None = None,
        max_refinements: int | None = None,
        accept_inexact: bool = False,
    ) -> npt.NDArray[np.float64]: ...
    def solve_with(
        self,
        b: ArrayLike,
        *,
        tolerance: float | None = None,
        max_refinements: int | None = None,
        accept_inexact: bool = False,
    ) -> Solution: ...
    def solve_shifted(
        self,
        shifted_eps: float,
        b: ArrayLike,
        *,
        tolerance: float | None = None,
        max_refinements: int | None = None,
        accept_inexact: bool = False,
    ) -> Solution: ...
    def log_det(self) -> LogDet: ...
    def log_abs_det(self) -> float: ...
    def inertia(self) -> Inertia: ...
    @property
    def eps(self) -> float: ...
    @property
    def num_params(self) -> int: ...
    @property
    def elimination(self) -> Literal["interleaved", "parameters_first"] | None: ...
    @property
    def route(self) -> Literal["lifted", "woodbury"]: ...
    @property
    def lifted_dim(self) -> int | None: ...

class RouteCosts:
    lifted: float
    woodbury: float | None
    cheaper: Literal["lifted", "woodbury"]

class Laplace:
    """The Laplace approximation with the exact curvature (docs/laplace.md)."""

    def __init__(
        self,
        net: Network,
        weights: Weights,
        x: ArrayLike,
        y: ArrayLike,
        *,
        curvature: Literal["hessian", "ggn"] = "ggn",
        sigma_noise: float | None = None,
        route: Literal["auto", "lifted", "woodbury"] = "auto",
        memory_limit: int | None = None,
        elimination: Elimination = "auto",
    ) -> None: ...
    def evidence(self, prior_precision: float) -> Evidence: ...
    def optimize_prior_precision(
        self, *, lower: float = 1e-4, upper: float = 1e4, rtol: float = 1e-6
    ) -> PriorSearch: ...
    def predictive(self, prior_precision: float, x: ArrayLike) -> Predictive: ...
    @property
    def likelihood(self) -> Literal["classification", "regression"]: ...
    @property
    def sigma_noise(self) -> float | None: ...
    @property
    def scale(self) -> float: ...
    @property
    def log_likelihood(self) -> float: ...
    @property
    def num_params(self) -> int: ...

class Evidence:
    prior_precision: float
    log_marginal_likelihood: float
    log_likelihood: float
    log_prior: float
    log_det_posterior_precision: float
    route: Literal["lifted", "woodbury"]
    inertia: Inertia

class PriorSearch:
    best: Evidence
    evaluations: int
    at_boundary: bool

class Predictive:
    @property
    def mean(self) -> npt.NDArray[np.float64]: ...
    @property
    def covariance(self) -> npt.NDArray[np.float64]: ...
    @property
    def variance(self) -> npt.NDArray[np.float64]: ...
    @property
    def noise_variance(self) -> float: ...
    @property
    def route(self) -> Literal["lifted", "woodbury"]: ...
    def probit(self) -> npt.NDArray[np.float64]: ...
    def sample_probabilities(self, samples: int = 1000, *, seed: int = 0) -> npt.NDArray[np.float64]: ...

class Inertia:
    positive: int
    negative: int
    zero: int
    uncertain: int

class LogDet:
    sign: float
    log_abs: float
    def __iter__(self) -> Iterator[float]: ...

class EigenvalueCount:
    count: int
    uncertain: int

class SolveReport:
    method: Literal["block_ldlt", "pivoted_lu", "woodbury", "shifted"]
    refinements: int
    initial_backward_error: float
    backward_error: float
    within_tolerance: bool

class Solution:
    x: npt.NDArray[np.float64]
    report: SolveReport

class Eigenvalue:
    end: Literal["min", "max"]
    value: float
    lower: float
    upper: float
    converged: bool
    multiplicity: int
    eigenvectors: npt.NDArray[np.float64]
    eigenvector_values: npt.NDArray[np.float64]
    residuals: npt.NDArray[np.float64]
    method: Literal["shift_invert", "bisection"]
    factorizations: int
    solves: int
    hvps: int

class IntervalCount:
    lower: float
    upper: float
    count: int
    uncertain: int

class TrustRegionStep:
    p: npt.NDArray[np.float64]
    lam: float
    step_norm: float
    radius: float
    model_decrease: float
    cauchy_decrease: float
    kind: Literal["interior", "boundary", "hard_case"]
    lambda_min: float | None
    optimality_residual: float
    converged: bool
    factorizations: int
    solves: int
