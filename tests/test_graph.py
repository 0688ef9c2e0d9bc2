"""The workflow graph's structure, from whatever a system publishes: hostile shapes fold into a
bounded graph or none, and the static SVG of any of them is drawn without raising."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook.protocol.backend import AppInfo
from atomemo_notebook.views._graph import MAX_GRAPH_NODES, published_graph, static_svg

IDS = st.sampled_from(["a", "b", "c", "d", "", None, 3])
ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                   lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                   max_leaves=10)
NODE = st.fixed_dictionaries({"id": IDS}, optional={"name": ANY, "type": ANY, "parentId": IDS, "label": ANY,
                                                    "data": ANY, "node_id": IDS})
EDGE = st.fixed_dictionaries({}, optional={"source": IDS, "target": IDS, "label": ANY, "source_node_id": IDS,
                                           "target_node_id": IDS, "sourceHandle": ANY})


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY, st.fixed_dictionaries({"nodes": st.one_of(st.lists(NODE | ANY, max_size=8),
                                                                   st.dictionaries(st.text(max_size=3), NODE, max_size=6),
                                                                   ANY),
                                             "edges": st.one_of(st.lists(EDGE | ANY, max_size=10), ANY)})))
def test_fuzz_any_published_graph_folds_or_is_none(raw):
    graph = published_graph(AppInfo(name="x", graph=raw if isinstance(raw, dict) else None))
    # Every node with a non-empty string id is a node of the graph; none at all, no graph (a
    # folder that gave up on everything would pass the rest).
    nodes = raw.get("nodes") if isinstance(raw, dict) else None
    items = list(nodes.values()) if isinstance(nodes, dict) else nodes if isinstance(nodes, list) else []
    named = {i for item in items if isinstance(item, dict)
             for i in [item.get("id") or item.get("node_id")] if isinstance(i, str) and i}
    if graph is None:
        assert not named
        return
    ids = {n["id"] for n in graph["nodes"]}
    assert ids == named
    assert all(isinstance(i, str) and i for i in ids)
    assert all(e["source"] in ids and e["target"] in ids for e in graph["edges"])
    svg = static_svg(graph, {next(iter(ids)): "failed"})
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_a_huge_graph_with_cycles_is_cut_and_still_drawn():
    n = MAX_GRAPH_NODES + 50
    raw = {"nodes": [{"id": f"n{i}", "name": "<b>x</b>"} for i in range(n)],
           "edges": [{"source": f"n{i}", "target": f"n{(i + 1) % 100}"} for i in range(n)]}
    graph = published_graph(AppInfo(name="x", graph=raw))
    assert graph is not None and graph["cut"] and len(graph["nodes"]) == MAX_GRAPH_NODES
    svg = static_svg(graph, {})
    assert "<b>" not in svg and svg.count("<rect") == MAX_GRAPH_NODES  # names escaped, every node drawn


@pytest.mark.parametrize("edges", [True, 7, "a->b", {"a": "b"}, None])
def test_edges_of_any_other_shape_are_no_edges(edges):
    """Found by the fuzz above in one test order: `edges: true` raised a TypeError."""
    graph = published_graph(AppInfo(name="x", graph={"nodes": [{"id": "a"}, {"id": "b"}], "edges": edges}))
    assert graph is not None and graph["edges"] == [] and {n["id"] for n in graph["nodes"]} == {"a", "b"}
