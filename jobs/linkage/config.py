"""The linkage configuration (jobs/linkage/linkage.yaml), read once per run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CONFIG_PATH = Path(__file__).with_name("linkage.yaml")


@dataclass(frozen=True)
class LinkageConfig:
    match_threshold: float
    review_floor: float
    nhs_deterministic: bool
    u_max_pairs: int
    seed: int
    prior_recall: float
    max_iterations: int
    break_lineage: str
    blocking_rules: tuple[tuple[str, ...], ...]
    fallback_blocking_rules: tuple[tuple[str, ...], ...]
    training_blocking_rules: tuple[tuple[str, ...], ...]
    fixed_m: dict[str, dict[str, float]]
    max_new_fraction: float
    driver_clustering_max_edges: int
    nicknames: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, path: Path | str = CONFIG_PATH) -> LinkageConfig:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        prob = raw["probabilistic"]
        config = cls(
            match_threshold=float(raw["match_threshold"]),
            review_floor=float(raw["review_floor"]),
            nhs_deterministic=bool(raw["deterministic"]["nhs_number"]),
            u_max_pairs=int(prob["u_max_pairs"]),
            seed=int(prob["seed"]),
            prior_recall=float(prob["prior_recall"]),
            max_iterations=int(prob["max_iterations"]),
            break_lineage=str(prob["break_lineage"]),
            blocking_rules=tuple(tuple(r) for r in prob["blocking_rules"]),
            fallback_blocking_rules=tuple(tuple(r) for r in prob.get("fallback_blocking_rules", ())),
            training_blocking_rules=tuple(tuple(r) for r in prob["training_blocking_rules"]),
            fixed_m={c: {label: float(m) for label, m in levels.items()} for c, levels in prob["fixed_m"].items()},
            max_new_fraction=float(raw["incremental"]["max_new_fraction"]),
            driver_clustering_max_edges=int(raw["clustering"]["driver_max_edges"]),
            nicknames={k.upper(): tuple(v.upper() for v in vs) for k, vs in raw["nicknames"].items()},
        )
        if not 0.0 < config.review_floor < config.match_threshold < 1.0:
            raise ValueError(f"{path}: need 0 < review_floor < match_threshold < 1")
        return config
