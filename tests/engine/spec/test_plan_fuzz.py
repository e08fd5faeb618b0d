"""The validator never raises: mutated copies of the demo plan (any JSON-ish value at any
path, keys deleted or added, deep nesting) give a list of problems, each with its path."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.resources import demo_plan_path
from engine.spec import PlanInvalid, Problem, parse_plan_text, plan_problems
from engine.spec.plan import dump_yaml

DEMO = yaml.safe_load(demo_plan_path().read_text(encoding="utf-8"))
PLAN_DIR = demo_plan_path().parent

# ~3000 mutants in a few seconds on a laptop CPU (see docs/plan-format.md for the figures).
EXAMPLES = 3000

Path = tuple[Any, ...]


def all_paths(node: Any, prefix: Path = ()) -> list[Path]:
    """Every path into plain data: the root, each mapping key and each list position."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += all_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += all_paths(value, (*prefix, i))
    return out


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64 + 1, -(10**30), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e-320, 1e308]),
    st.text(max_size=20),
    st.sampled_from(["", "x", "bert-tiny", "from_stage", "é😀\u202e", "\x00", "a" * 300]),
    # names the plan knows, so that mutants also hit the deeper checks
    st.sampled_from(["pretrain", "train", "distill", "joint", "ensemble", "grow", "topics"]),
)
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["name", "kind", "model", "data", "path", "hub", "from_stage", "stages"]),
    st.integers(),
    st.none(),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=12,
)


def deeply_nested(value: Any, depth: int, as_dict: bool) -> Any:
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


@st.composite
def mutants(draw: st.DrawFn) -> dict[str, Any] | Any:
    """The demo plan with one to three mutations, each at a path of the current data."""
    data: Any = copy.deepcopy(DEMO)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(all_paths(data)))
        op = draw(st.sampled_from(["replace", "replace", "delete", "insert", "nest"]))
        if not path:
            if op in ("replace", "delete"):
                data = draw(values)
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if op == "replace":
            parent[last] = draw(values)
        elif op == "delete":
            del parent[last]
        elif op == "insert":
            target = parent[last]
            if isinstance(target, dict):
                target[draw(keys)] = draw(values)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(values))
            else:
                parent[last] = {draw(keys): target}
        else:
            depth = draw(st.integers(1, 150))
            parent[last] = deeply_nested(parent[last], depth, draw(st.booleans()))
    return data


def assert_problems(problems: Any) -> None:
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, Problem)
        assert isinstance(problem.path, str) and problem.path, problem
        assert isinstance(problem.message, str) and problem.message, problem
        str(problem)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutants())
def test_mutated_plans_give_problems_with_paths_never_exceptions(data):
    # plan_problems is plan_from_data's PlanInvalid as a list (engine/spec/plan.py): one
    # validation per mutant, the fuzz's cost.
    assert_problems(plan_problems(data, PLAN_DIR))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_mutated_plans_survive_the_trip_through_text(data):
    """What the window writes (YAML of the raw data) reads back to the same problems."""
    try:
        text = dump_yaml(data)
    except (yaml.YAMLError, RecursionError):  # e.g. keys YAML cannot write; not a plan file
        return
    try:
        parsed = parse_plan_text(text)
    except PlanInvalid as exc:
        assert_problems(exc.problems)
        return
    assert_problems(plan_problems(parsed, PLAN_DIR))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_text_parses_to_a_mapping_or_problems(text):
    try:
        data = parse_plan_text(text, source="p.yaml")
    except PlanInvalid as exc:
        assert_problems(exc.problems)
        assert all(p.path == "p.yaml" for p in exc.problems)
        return
    assert isinstance(data, dict)
    assert_problems(plan_problems(data, PLAN_DIR))


@pytest.mark.parametrize(
    "edit,path",
    [
        (lambda d: d["stages"][0].__setitem__("model", 5), "stages[0].model"),
        (lambda d: d["stages"][1].__setitem__("data", "x"), "stages[1].data"),
        (lambda d: d["stages"][2].__setitem__("optimizer", [1, 2]), "stages[2].optimizer"),
        (lambda d: d["stages"].__setitem__(1, [1]), "stages[1]"),
        (lambda d: d["stages"][1]["model"].__setitem__("from_stage", []), "stages[1].model"),
        (lambda d: d["stages"][2].__setitem__("name", {"a": 1}), "stages[2].name"),
        (lambda d: d.__setitem__("stages", {"a": 1}), "stages"),
        (lambda d: d["stages"][0].__setitem__(5, 1), "stages[0]"),
        (lambda d: d.__setitem__("", None), "plan"),
        (lambda d: d["stages"][0]["data"].__setitem__("eval_ratio", math.nan), "stages[0].data"),
        (lambda d: d["stages"][0].__setitem__("seed", 10**400), "stages[0].seed"),
    ],
)
def test_the_reported_crashes_are_problems_at_their_paths(edit, path):
    data = copy.deepcopy(DEMO)
    edit(data)
    problems = plan_problems(data, PLAN_DIR)
    assert_problems(problems)
    assert any(p.path.startswith(path) for p in problems), problems


@pytest.mark.parametrize(
    "value,message",
    [
        ([1, 2], "(got a list)"),
        (5, "(got 5)"),
        ("just text", "(got the text 'just text')"),
        (None, "is empty"),
    ],
)
def test_a_plan_that_is_not_a_mapping_says_what_it_got(value, message):
    (problem,) = plan_problems(value)
    assert problem.path == "plan"
    assert message in problem.message
