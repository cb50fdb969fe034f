import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

Id = Union[int, str]
PathLike = Union[str, os.PathLike[str]]

__version__: str

class Interactions:
    @classmethod
    def from_csv(
        cls,
        path: Union[PathLike, Sequence[PathLike]],
        *,
        implicit: bool = ...,
        positive_threshold: Optional[float] = ...,
        format: Optional[str] = ...,
        user_col: Optional[str] = ...,
        item_col: Optional[str] = ...,
        rating_col: Optional[str] = ...,
        time_col: Optional[str] = ...,
        skip_bad_rows: bool = ...,
        min_user_count: int = ...,
        min_item_count: int = ...,
        encoding: Optional[str] = ...,
        aggregate: Optional[str] = ...,
        time_format: Optional[str] = ...,
    ) -> Interactions: ...
    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        values: Any = ...,
        times: Any = ...,
        *,
        implicit: bool = ...,
        positive_threshold: Optional[float] = ...,
        aggregate: Optional[str] = ...,
        min_user_count: int = ...,
        min_item_count: int = ...,
        source: str = ...,
    ) -> Interactions: ...
    @classmethod
    def from_polars(
        cls,
        df: Any,
        user: str = ...,
        item: str = ...,
        value: Optional[str] = ...,
        time: Optional[str] = ...,
        **options: Any,
    ) -> Interactions: ...
    @classmethod
    def from_pandas(
        cls,
        df: Any,
        user: str = ...,
        item: str = ...,
        value: Optional[str] = ...,
        time: Optional[str] = ...,
        **options: Any,
    ) -> Interactions: ...
    @classmethod
    def from_scipy(
        cls,
        matrix: Any,
        user_ids: Optional[Sequence[Id]] = ...,
        item_ids: Optional[Sequence[Id]] = ...,
        **options: Any,
    ) -> Interactions: ...
    def split(
        self, kind: str = ..., fraction: float = ..., seed: int = ...
    ) -> Tuple[Interactions, Interactions]: ...
    def __len__(self) -> int: ...
    @property
    def n_users(self) -> int: ...
    @property
    def n_items(self) -> int: ...
    def to_arrays(self) -> Tuple[Any, Any, npt.NDArray[np.float32]]: ...

class _Trainer:
    @property
    def params(self) -> Dict[str, Any]: ...
    def fit(
        self,
        train: Interactions,
        validation: Optional[float] = ...,
        show_progress: bool = ...,
    ) -> Model: ...

class SGD(_Trainer):
    def __init__(
        self,
        factors: int = ...,
        epochs: int = ...,
        learning_rate: float = ...,
        lr_decay: float = ...,
        reg_factors: float = ...,
        reg_bias: float = ...,
        init_std: float = ...,
        seed: int = ...,
        threads: Optional[int] = ...,
        patience: Optional[int] = ...,
        biases: bool = ...,
        adagrad: bool = ...,
        lead_factors: int = ...,
        list_head: bool = ...,
    ) -> None: ...

class ALS(_Trainer):
    def __init__(
        self,
        implicit: bool = ...,
        factors: int = ...,
        epochs: int = ...,
        reg: float = ...,
        scale_reg: bool = ...,
        alpha: float = ...,
        confidence: str = ...,
        eps: float = ...,
        solver: str = ...,
        cg_steps: int = ...,
        init_std: float = ...,
        seed: int = ...,
        threads: Optional[int] = ...,
        patience: Optional[int] = ...,
        reg_exponent: float = ...,
        reg_unobserved: float = ...,
        unobserved_exponent: float = ...,
        item_degree_beta: float = ...,
        init: str = ...,
        list_head: bool = ...,
    ) -> None: ...

class BPR(_Trainer):
    def __init__(
        self,
        factors: int = ...,
        epochs: int = ...,
        learning_rate: float = ...,
        reg: float = ...,
        init_std: float = ...,
        seed: int = ...,
        threads: Optional[int] = ...,
        patience: Optional[int] = ...,
    ) -> None: ...

class Model:
    def recommend(
        self,
        user: Id,
        n: int = ...,
        exclude_seen: bool = ...,
        exclude: Optional[Iterable[Id]] = ...,
        only: Optional[Iterable[Id]] = ...,
        strict: bool = ...,
    ) -> List[Tuple[Id, float]]: ...
    def recommend_many(
        self,
        users: Iterable[Id],
        n: int = ...,
        exclude_seen: bool = ...,
        strict: bool = ...,
        format: str = ...,
    ) -> Any: ...
    def recommend_all(self, n: int = ..., exclude_seen: bool = ..., format: str = ...) -> Any: ...
    def similar_items(self, item: Id, n: int = ...) -> List[Tuple[Id, float]]: ...
    def recommend_for_items(
        self,
        items: Iterable[Union[Id, Tuple[Id, float]]],
        n: int = ...,
        exclude_seen: bool = ...,
    ) -> List[Tuple[Id, float]]: ...
    def evaluate(
        self,
        test: Union[Interactions, PathLike],
        k: Union[int, Sequence[int]] = ...,
        positive_threshold: Optional[float] = ...,
    ) -> Dict[str, float]: ...
    @property
    def user_factors(self) -> npt.NDArray[np.float32]: ...
    @property
    def item_factors(self) -> npt.NDArray[np.float32]: ...
    @property
    def user_ids(self) -> Union[npt.NDArray[np.int64], List[str]]: ...
    @property
    def item_ids(self) -> Union[npt.NDArray[np.int64], List[str]]: ...
    @property
    def n_users(self) -> int: ...
    @property
    def n_items(self) -> int: ...
    @property
    def factors(self) -> int: ...
    @property
    def algorithm(self) -> str: ...
    def save(self, path: PathLike) -> None: ...
    def info(self) -> Dict[str, Any]: ...

def load(path: PathLike) -> Model: ...
def tune(
    data: Union[PathLike, Sequence[PathLike]],
    budget: float = ...,
    *,
    implicit: bool = ...,
    positive_threshold: Optional[float] = ...,
    algo: Optional[Union[str, Sequence[str]]] = ...,
    metric: Optional[str] = ...,
    trials: Optional[int] = ...,
    validation_fraction: float = ...,
    seed: int = ...,
    parallel: Optional[int] = ...,
) -> Dict[str, Any]: ...
def trainer_from(result: Dict[str, Any], threads: Optional[int] = ...) -> _Trainer: ...
