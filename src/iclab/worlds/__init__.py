"""Synthetic worlds, registered by name.

Adding a world is one file with one class plus a line in ``_REGISTRY`` below.
"""

from __future__ import annotations

from iclab.errors import UnknownNameError
from iclab.worlds.base import TokenBatch, VectorBatch, World
from iclab.worlds.bursty_classes import BurstyClasses
from iclab.worlds.ginc import GINCWorld
from iclab.worlds.graph import GraphWorld
from iclab.worlds.graph_pretrain import RandomGraphWalks
from iclab.worlds.icg import ICGWorld
from iclab.worlds.induction import RandomTokens, RepeatedTokens
from iclab.worlds.label_map import LabelMapWorld
from iclab.worlds.regression import DecisionTree, LinearRegression, ReluNet, SparseLinearMixture, SparseLinearRegression

_REGISTRY: dict[str, type[World]] = {w.name: w for w in [
    RepeatedTokens, RandomTokens, ICGWorld, GraphWorld, RandomGraphWalks, GINCWorld, BurstyClasses,
    LinearRegression, SparseLinearRegression, SparseLinearMixture, DecisionTree, ReluNet, LabelMapWorld,
]}


def world_names() -> list[str]:
    """Names of the registered worlds, sorted."""
    return sorted(_REGISTRY)


def world_class(name: str) -> type[World]:
    """The world class registered as ``name``; lists the known names if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("world", name, world_names()) from None


def make_world(name: str, **params) -> World:
    """Build the world registered as ``name`` with validated parameters."""
    return world_class(name)(**params)


__all__ = ["TokenBatch", "VectorBatch", "World", "make_world", "world_class", "world_names",
           "RepeatedTokens", "RandomTokens", "ICGWorld", "GraphWorld", "RandomGraphWalks", "GINCWorld",
           "BurstyClasses",
           "LinearRegression", "SparseLinearRegression", "SparseLinearMixture", "DecisionTree", "ReluNet",
           "LabelMapWorld"]
