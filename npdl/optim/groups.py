"""Building parameter groups from names: the "no weight decay on biases and norms" recipe.

``param_groups(model.named_parameters(), no_decay=("bias", "norm"), groups=[{"match": "^embed",
"lr": 1e-2}])`` returns group dicts ``{"params": [(name, p), ...], **overrides}`` that any
optimizer accepts. The same rules are arguments of every optimizer constructor (``no_decay``,
``no_decay_1d``, ``groups``), which is how a YAML config expresses them.

Matching: each pattern is a regular expression searched anywhere in the dotted name
(``re.search``), so a plain word like ``bias`` acts as a substring test and ``"^embed\\."`` or
``"\\.ln_\\d+\\."`` anchor as usual. Names alone miss norm layers named ``ln_1``/``ln_f``, so
``no_decay_1d`` also exempts every parameter with fewer than 2 dimensions -- biases, norm gains,
scalar gates -- which is nanoGPT's rule (decay only the weights of matmuls and embeddings).
"""
from __future__ import annotations

import re

from npdl.core.tensor import Tensor
from npdl.schema import ArgumentError


def named_tensors(params, counter: list[int]) -> list[tuple[str, Tensor]]:
    """[(name, tensor)] from pairs, a dict, a module or bare tensors (named by position).

    ``counter`` is a one-element list holding the next position, shared across groups so bare
    tensors are named "0", "1", ... over the whole optimizer.

    Raises:
        ArgumentError: an entry is neither a Tensor nor a (name, Tensor) pair.
    """
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    if isinstance(params, dict):
        params = params.items()
    out = []
    for item in params:
        if isinstance(item, Tensor):
            name, p = str(counter[0]), item
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor):
            name, p = str(item[0]), item[1]
        else:
            raise ArgumentError([("params", "parameters must be Tensors or (name, Tensor) pairs, "
                                            f"got {type(item).__name__}")])
        counter[0] += 1
        out.append((name, p))
    return out


def param_groups(named_params, no_decay=("bias", "norm"), groups=None, *, no_decay_1d: bool = True) -> list[dict]:
    """Split named parameters into optimizer groups by name.

    Args:
        named_params: iterable of (dotted name, Parameter), e.g. ``model.named_parameters()``.
        no_decay: regexes (plain words act as substrings) whose matching parameters get
            ``weight_decay = 0``. Applied after ``groups``, so it wins over a group's weight_decay.
        groups: ``[{"match": regex, **overrides}]``; a parameter joins the FIRST rule whose regex
            it matches and takes that rule's overrides (e.g. ``lr``). Unmatched parameters keep the
            optimizer's defaults.
        no_decay_1d: also exempt parameters with ``ndim < 2`` (biases, norm weights) from decay.

    Returns:
        Non-empty group dicts ``{"params": [(name, p)], **overrides}``, one per distinct (rule,
        decayed?) pair in order of first appearance, parameters in their given order.

    Raises:
        ArgumentError: an invalid regex, a rule without ``match``, or a rule matching no parameter.
    """
    named = named_tensors(named_params, [0])
    problems = []
    nd = [_compile(p, f"no_decay[{i}]", problems) for i, p in enumerate(no_decay or ())]
    rules = []
    for i, g in enumerate(groups or ()):
        if not isinstance(g, dict) or not isinstance(g.get("match"), str):
            problems.append((f"groups[{i}]", "expected a mapping with a 'match' regex and overrides, "
                                    f"e.g. {{match: '^embed', lr: 0.01}}; got {g!r:.60}"))
            continue
        if "params" in g:
            problems.append((f"groups[{i}].params", "a config group selects parameters with 'match'"))
        rules.append((i, _compile(g["match"], f"groups[{i}].match", problems),
                      {k: v for k, v in g.items() if k not in ("match", "params")}))
    invalid = {path for path, _ in problems}
    buckets: dict[tuple, dict] = {}
    used = set()
    for name, p in named:
        rule = next((r for r in rules if r[1].search(name)), None)
        exempt = any(rx.search(name) for rx in nd) or (no_decay_1d and p.data.ndim < 2)
        key = (None if rule is None else rule[0], exempt)
        if key not in buckets:
            buckets[key] = {"params": [], **({} if rule is None else rule[2])}
            if exempt:
                buckets[key]["weight_decay"] = 0.0
        buckets[key]["params"].append((name, p))
        if rule is not None:
            used.add(rule[0])
    some = ", ".join(n for n, _ in named[:4])
    problems += [(f"groups[{i}].match", f"'{rx.pattern}' matches no parameter (names look like: {some})")
                 for i, rx, _ in rules if i not in used and f"groups[{i}].match" not in invalid]
    if problems:
        raise ArgumentError(problems)
    return list(buckets.values())


def normalize_groups(params, no_decay, no_decay_1d, groups, check_overrides) -> list[tuple[list, dict]]:
    """Every accepted form of ``params`` as [(pairs, overrides)] (see ``npdl.optim.optimizer``).

    ``check_overrides(overrides, path) -> [(path, message)]`` vets the override keys of each group.

    Raises:
        ArgumentError: listing every malformed group, unknown override or bad rule.
    """
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    items = list(params.items() if isinstance(params, dict) else params)
    problems = []
    if items and all(isinstance(x, dict) for x in items):
        if no_decay or no_decay_1d or groups:
            raise ArgumentError("no_decay/no_decay_1d/groups need a flat list of named parameters, "
                                "not group dicts (build the groups with npdl.optim.param_groups instead)")
        counter = [0]
        out = []
        for i, g in enumerate(items):
            if "params" not in g:
                problems.append((f"param_groups[{i}]", "group dict without a 'params' key"))
                continue
            overrides = {k: v for k, v in g.items() if k != "params"}
            problems += check_overrides(overrides, f"param_groups[{i}]")
            out.append((named_tensors(g["params"], counter), overrides))
    else:
        for i, g in enumerate(groups or ()):
            rest = {k: v for k, v in g.items() if k != "match"} if isinstance(g, dict) else {}
            problems += check_overrides(rest, f"groups[{i}]")
        try:
            built = param_groups(named_tensors(items, [0]), no_decay=no_decay, groups=groups, no_decay_1d=no_decay_1d)
        except ArgumentError as e:
            raise ArgumentError(problems + e.problems) from None
        out = [(g.pop("params"), g) for g in built]
    if problems:
        raise ArgumentError(problems)
    return out


def _compile(pattern, path: str, problems: list):
    try:
        return re.compile(str(pattern))
    except re.error as e:
        problems.append((path, f"invalid regular expression {pattern!r:.60}: {e}"))
        return re.compile(r"(?!)")  # matches nothing; the error is reported
