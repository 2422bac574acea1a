"""A ``StepGraph`` (``nn/graph.py``) as Graphviz DOT text, written by hand (no graphviz package).

Layout: data flows top to bottom, the loss is the last node. Ops sit in nested clusters, one per
module that ran (``layers`` holds ``layers.1``, ...); parameters sit in the cluster of their
module with their dotted name, shape and element count; every edge is labelled with the shape
and dtype of the tensor it carries. ``depth="module"`` draws each module's own ops as one node
(its class and the ops it ran), so a deep model reads as its layer diagram.
"""
from __future__ import annotations

from collections import Counter

from npdl.nn.graph import ROOT, Edge, Node, StepGraph

DEPTHS = ("op", "module")

_STYLE = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#e8eef7"',
    "module": 'shape=box, style="rounded,filled", fillcolor="#d5e8d4"',
    "param": 'shape=box, style=filled, fillcolor="#fff2cc"',
    "input": 'shape=box, style=filled, fillcolor="#f0f0f0"',
    "loss": 'shape=box, style="filled,bold", fillcolor="#f8cecc"',
}


def quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, lines joined with Graphviz's
    centred line break ``\\n`` (so a label can never end the string or inject attributes)."""
    lines = str(text).replace("\\", "\\\\").replace('"', '\\"').splitlines() or [""]
    return '"' + "\\n".join(lines) + '"'


def _shape(shape: tuple[int, ...], dtype: str) -> str:
    return f"{tuple(int(s) for s in shape)} {dtype}" if shape else f"scalar {dtype}"


def _label(node: Node, loss: float) -> str:
    if node.kind == "param":
        return f"{node.label}\n{_shape(node.shape, node.dtype)}\n{node.size:,} params"
    if node.kind == "input":
        return f"{node.label}\n{_shape(node.shape, node.dtype)}"
    if node.kind == "loss":
        return f"loss = {loss:.4g}"
    return node.label


def _parents(key: str) -> list[str]:
    """``layers.1`` -> [``layers.1``, ``layers``, ROOT]; loss roots ``(loss)`` stand alone."""
    if key.startswith("("):
        head, _, rest = key.partition(".")
        parts = rest.split(".") if rest else []
        out = [head] + [f"{head}.{'.'.join(parts[:i])}" for i in range(1, len(parts) + 1)]
        return out[::-1]
    parts = key.split(".") if key else []
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)] + [ROOT]


def collapse(graph: StepGraph) -> tuple[list[Node], list[Edge]]:
    """Module depth: each run of consecutive ops (in creation order) of one module becomes one
    node; ops outside modules stay. Edges inside a node disappear and parallel edges carrying the
    same shape are drawn once.

    Runs, not whole modules: a model whose own ops come before and after its encoder (scale the
    embeddings ... project the output) would otherwise be one node feeding the encoder and fed by
    it, a cycle. Runs are intervals of creation order and every edge goes forward in it, so the
    collapsed graph stays acyclic (an RNN cell called T times is T nodes: the unrolled loop).
    """
    merged: dict[str, Node] = {}
    counts: dict[str, Counter] = {}  # module node id -> how often it ran each op
    where: dict[str, str] = {}
    nodes: list[Node] = []
    previous = None
    for n in graph.nodes:
        if n.kind != "op" or n.module is None:
            nodes.append(n)
            previous = None if n.kind == "op" else previous
            continue
        if previous is None or previous.module != n.module:
            previous = Node(f"mod{n.seq}", "module", graph.modules.get(n.module, "?"), n.module, seq=n.seq)
            merged[previous.id], counts[previous.id] = previous, Counter()
            nodes.append(previous)
        where[n.id] = previous.id
        counts[previous.id][n.label] += 1
    for m in merged.values():
        ops = ", ".join(f"{op} x{k}" if k > 1 else op for op, k in counts[m.id].items())
        m.label = f"{m.module or '(model)'}: {m.label}\n{ops}"
    edges, seen = [], set()
    for e in graph.edges:
        src, dst = where.get(e.src, e.src), where.get(e.dst, e.dst)
        key = (src, dst, e.shape, e.dtype)
        if src == dst or key in seen:
            continue
        seen.add(key)
        edges.append(Edge(src, dst, e.shape, e.dtype))
    return nodes, edges


def to_dot(graph: StepGraph, depth: str = "op", title: str = "") -> str:
    """Graphviz DOT text of ``graph``; ``depth``: "op" (every op) or "module" (one node per module)."""
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
    nodes, edges = (graph.nodes, graph.edges) if depth == "op" else collapse(graph)
    tree: dict[str | None, list[Node]] = {}
    for n in nodes:
        tree.setdefault(_cluster_of(n, depth), []).append(n)
    lines = ["digraph step {", "  rankdir=TB;", "  newrank=true;", '  graph [fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9];']
    if title:
        lines.append(f"  label={quote(title)}; labelloc=t;")
    for n in tree.get(None, []):
        lines.append(f"  {quote(n.id)} [label={quote(_label(n, graph.loss))}, {_STYLE[n.kind]}];")
    _clusters(lines, tree, graph, "  ")
    for e in edges:
        lines.append(f"  {quote(e.src)} -> {quote(e.dst)} [label={quote(_shape(e.shape, e.dtype))}];")
    lines.append('  { rank=sink; "loss"; }')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster_of(n: Node, depth: str) -> str | None:
    """Ops in their module's cluster; at module depth a module (and its parameters) sits in its
    parent's cluster, since the node itself stands for the module."""
    if n.module is None or depth == "op":
        return n.module
    chain = _parents(n.module)
    return chain[1] if len(chain) > 1 else None


def _clusters(lines: list[str], tree: dict, graph: StepGraph, indent: str) -> None:
    """Nested ``subgraph cluster_*`` blocks for every module key that holds nodes."""
    children: dict[str | None, list[str]] = {}
    # clusters in the order the forward first entered them (parameters alone would put them in
    # order of first use, which lists every Linear before the first ReLU)
    first = {key: min((n.seq for n in ns if n.kind in ("op", "module")), default=1 << 62) for key, ns in tree.items()}
    for key in sorted(tree, key=lambda k: first[k]):
        if key is None:
            continue
        chain = _parents(key)
        for child, parent in zip(chain, chain[1:] + [None]):
            if child not in children.setdefault(parent, []):
                children[parent].append(child)
            children.setdefault(child, [])

    def emit(key: str, ind: str) -> None:
        name = key or "(model)"
        label = quote(f"{name}: {graph.modules.get(key, '?')}")
        lines.append(f"{ind}subgraph {quote('cluster_' + name)} {{")
        lines.append(f'{ind}  label={label}; style=rounded; color="#9aa5b1";')
        for n in tree.get(key, []):
            lines.append(f"{ind}  {quote(n.id)} [label={quote(_label(n, graph.loss))}, {_STYLE[n.kind]}];")
        for child in children.get(key, []):
            emit(child, ind + "  ")
        lines.append(f"{ind}}}")

    for top in children.get(None, []):
        emit(top, indent)
