"""The hospital as a graph: corridors (edges) and lift rides between floors (moves).

Nodes are numbered in map order. A lift connects every pair of its landings; a ride takes
`floor_travel_s` per floor and covers no corridor distance. Blocked corridors (reported by
robots) are left out. All-pairs travel times come from scipy's Dijkstra, once per speed.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from functools import cached_property

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from .scenario import HospitalMap

# csgraph ignores zero weights; a lift ride covers (almost) no corridor distance
_LIFT_LENGTH_M = 1e-6


@dataclasses.dataclass(frozen=True)
class Move:
    to: int
    length_m: float          # corridor length; 0 for a lift ride
    lift: str | None = None  # the lift ridden, if any
    lift_s: float = 0.0      # ride time
    single_lane: bool = False

    def duration(self, speed_mps: float) -> float:
        return self.lift_s if self.lift else self.length_m / speed_mps


def corridor_key(a: str, b: str) -> tuple[str, str]:
    """Corridors are undirected: one key for both directions."""
    return (a, b) if a <= b else (b, a)


class HospitalGraph:
    def __init__(self, hmap: HospitalMap, blocked: Iterable[tuple[str, str]] = (),
                 out_of_service: frozenset[str] = frozenset()):
        """`blocked` corridors and `out_of_service` lifts: no new route may take them
        (`move` still knows them, for the routes that took one before)."""
        self.map = hmap
        self.out_of_service = out_of_service
        self.ids = [n.id for n in hmap.nodes]
        self.index = {nid: i for i, nid in enumerate(self.ids)}
        self.floor = [n.floor for n in hmap.nodes]
        self.lift_capacity = {lift.id: lift.capacity for lift in hmap.lifts}
        self.blocked = {corridor_key(a, b) for a, b in blocked}
        best: dict[tuple[int, int], Move] = {}
        closed = set()
        for e in hmap.edges:
            u, v = self.index[e.from_], self.index[e.to]
            if corridor_key(e.from_, e.to) in self.blocked:
                closed |= {(u, v), (v, u)}
            for a, b in ((u, v), (v, u)):
                if (a, b) not in best or e.length_m < best[a, b].length_m:
                    best[a, b] = Move(b, e.length_m, single_lane=e.single_lane)
        for lift in hmap.lifts:
            landings = [self.index[n] for n in lift.nodes]
            for a in landings:
                for b in landings:
                    if a != b:
                        ride = lift.floor_travel_s * abs(self.floor[a] - self.floor[b])
                        best[a, b] = Move(b, 0.0, lift=lift.id, lift_s=ride)
        self._move = best
        self.moves: list[list[Move]] = [[] for _ in self.ids]
        for (a, b), move in sorted(best.items()):
            if move.lift not in out_of_service and (a, b) not in closed:
                self.moves[a].append(move)
        self._times: dict[float, np.ndarray] = {}
        self._moves_at: dict[float, list] = {}
        self._without: dict[str, HospitalGraph] = {}

    def without_lift(self, lift_id: str) -> HospitalGraph:
        """This map with `lift_id` out of service too (kept: precompute its travel times)."""
        if lift_id not in self._without:
            self._without[lift_id] = HospitalGraph(self.map, self.blocked,
                                                   self.out_of_service | {lift_id})
        return self._without[lift_id]

    def moves_at(self, speed_mps: float) -> list[list[tuple[Move, float, bool]]]:
        """Per node: (move, its duration at `speed_mps`, whether it is a shared resource:
        a single-lane corridor or a lift)."""
        if speed_mps not in self._moves_at:
            self._moves_at[speed_mps] = [
                [(m, m.duration(speed_mps), m.single_lane or m.lift is not None) for m in ms]
                for ms in self.moves]
        return self._moves_at[speed_mps]

    def move(self, a: int, b: int) -> Move:
        return self._move[a, b]

    def has_corridor(self, a: str, b: str) -> bool:
        return any(corridor_key(e.from_, e.to) == corridor_key(a, b) for e in self.map.edges)

    def _matrix(self, weight) -> csr_matrix:
        rows, cols, data = [], [], []
        for a, moves in enumerate(self.moves):
            for m in moves:
                rows.append(a)
                cols.append(m.to)
                data.append(max(weight(m), _LIFT_LENGTH_M))
        n = len(self.ids)
        return csr_matrix((data, (rows, cols)), shape=(n, n))

    def travel_times(self, speed_mps: float) -> np.ndarray:
        """Seconds from every node to every node at `speed_mps` (inf where unreachable)."""
        if speed_mps not in self._times:
            self._times[speed_mps] = dijkstra(self._matrix(lambda m: m.duration(speed_mps)))
        return self._times[speed_mps]

    @cached_property
    def adjacency(self) -> csr_matrix:
        """1 where a move leads from the row's node to the column's."""
        return (self._matrix(lambda m: 1.0) > 0).astype(np.int8)

    @cached_property
    def pieces(self) -> int:
        """How many parts the map falls into (each reaches every node of its own part)."""
        return connected_components(self.adjacency, directed=True, connection="strong")[0]

    @cached_property
    def distances_m(self) -> np.ndarray:
        """Corridor metres of the shortest-distance path between every pair of nodes."""
        return dijkstra(self._matrix(lambda m: m.length_m))
