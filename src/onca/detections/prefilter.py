"""Rule prefilter: skip rules that provably cannot match an event, decided from the rule's source.

Most library rules open with a test such as ``if event.get("eventName") not in EVENTS: return
False``. ``derive_guard`` reads a rule's Python source with ``ast`` and derives, only from patterns
it can prove, a necessary condition on event fields: a ``Guard``. When an event fails the guard, the
rule would have returned exactly ``False`` without raising and without side effects, so the
production runner may skip it. ``GuardIndex`` evaluates the guards of all rules of a log type with
one lookup per distinct field path and a per-path memo of the values seen.

Soundness rests on these assumptions, all true for the production runner:

* the event is a ``PantherEvent`` built from JSON: string keys, leaf values of JSON types (str, int,
  float, bool, None), nested containers wrapped as the immutable list/dict types;
* nothing rebinds module attributes or mutates another module's objects at run time. Test mocks
  do exactly that (they patch rule and helper module attributes), so guards are for production
  only and the test harness must not use them;
* ``==`` against a constant, truthiness, and ``in`` over a tuple/list never raise for any event
  value (true for JSON scalars and the immutable wrappers). Whatever can raise on some values
  (``in`` over a set, str methods, ``event[key]``) becomes a requirement: the guard only skips
  when the values involved are of a type for which it cannot raise.

Whatever is not recognised yields no guard: a missing guard costs speed, a wrong one a verdict.
"""

from __future__ import annotations

import ast
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import getitem, methodcaller, or_
from types import MappingProxyType

MISSING = object()
"""An absent field, or a value the rule could not compute without raising."""

_SCALARS = frozenset({str, int, float, bool, type(None)})
# str -> str methods that take no arguments and cannot raise on a str receiver.
_STR_TRANSFORMS = frozenset({"lower", "upper", "strip", "lstrip", "rstrip", "casefold"})
_STR_PREDICATES = frozenset({"startswith", "endswith"})
# Names whose use anywhere in a module makes its globals untrustworthy.
_REFLECTIVE = frozenset(
    {"globals", "vars", "setattr", "delattr", "exec", "eval", "compile", "__import__", "__dict__", "modules"}
)
# Builtins a constant container may be passed to without being mutated.
_NON_MUTATING_BUILTINS = frozenset(
    {"len", "sorted", "list", "tuple", "set", "frozenset", "any", "all", "str", "repr", "min", "max"}
)
_CONTAINER_BUILDERS = frozenset({"frozenset", "set", "tuple", "list"})
_STATEMENT_BUDGET = 400
_CACHE_LIMIT = 65_536
_TESTS_PER_RULE = 2
_NO_HELPERS: Mapping[str, str] = MappingProxyType({})


# --------------------------------------------------------------------------------------------
# Public guard model


@dataclass(frozen=True, slots=True)
class FieldRef:
    """How a rule computes a value from the event.

    ``accessor`` is ``"get"`` (``event.get(path[0], default)``), ``"deep_get"``
    (``event.deep_get(*path, default=default)``) or ``"item"`` (``event[path[0]]``, which raises when
    absent); then the no-argument str methods in ``transform`` are applied in order.
    """

    path: tuple[str, ...]
    accessor: str
    default: object
    transform: tuple[str, ...]

    def resolve(self, raw: object) -> object:
        """The value from the raw lookup (see ``lookup_raw``); ``MISSING`` where the rule would raise."""
        value = raw
        if value is MISSING:
            value = MISSING if self.accessor == "item" else self.default
        elif value is None and self.accessor == "deep_get":
            value = self.default
        if self.transform:
            if type(value) is not str:
                return MISSING
            for name in self.transform:
                value = getattr(value, name)()
        return value

    def lookup_raw(self, event: Mapping[str, object]) -> object:
        return _lookup_for(self.path)(event)


@dataclass(frozen=True, slots=True)
class Requirement:
    """The event is only skippable when ``ref``'s value is a scalar (a str when ``str_only``)."""

    ref: FieldRef
    str_only: bool

    def holds(self, raw: object) -> bool:
        value = self.ref.resolve(raw)
        return type(value) is str if self.str_only else type(value) in _SCALARS


@dataclass(frozen=True, slots=True)
class FieldTest:
    """The rule may only match (or raise, or act) when ``ref``'s value is in ``values``.

    The test only ever rejects an event when that value is a plain scalar and every requirement
    holds; otherwise it admits it.
    """

    ref: FieldRef
    values: frozenset[object]
    requires: tuple[Requirement, ...] = ()

    def admits(self, event: Mapping[str, object]) -> bool:
        value = self.ref.resolve(self.ref.lookup_raw(event))
        if type(value) not in _SCALARS or value in self.values:
            return True
        return not all(req.holds(req.ref.lookup_raw(event)) for req in self.requires)


@dataclass(frozen=True, slots=True)
class Guard:
    """Necessary condition for a rule to match, raise or act: every test must admit the event."""

    tests: tuple[FieldTest, ...]

    def admits(self, event: Mapping[str, object]) -> bool:
        return all(test.admits(event) for test in self.tests)


def _lookup_for(path: tuple[str, ...]) -> Callable[[Mapping[str, object]], object]:
    # One key: get() keeps a present None apart from a missing key, which get() and [] need.
    # Several keys are only read with deep_get, which folds None into the default anyway.
    if len(path) == 1:
        return methodcaller("get", path[0], MISSING)
    return methodcaller("deep_get", *path, default=MISSING)


_Check = frozenset[object] | Requirement


class _Slot:
    """One field path read per event, with every check on it, memoised by value.

    A check contributes ``bit`` to the mask when it fires: a test fires when it rejects the value,
    a requirement when it does not hold (its bit sits ``n`` places higher, n = number of rules).
    """

    __slots__ = ("checks", "lookup", "memo")

    def __init__(self, path: tuple[str, ...]) -> None:
        self.lookup = _lookup_for(path)
        self.checks: list[tuple[int, FieldRef, _Check]] = []
        self.memo: dict[object, int] = {}

    def mask(self, raw: object) -> int:
        mask = 0
        for bit, ref, check in self.checks:
            if isinstance(check, Requirement):
                if not check.holds(raw):
                    mask |= bit
                continue
            value = ref.resolve(raw)
            if type(value) in _SCALARS and value not in check:
                mask |= bit
        return mask


class GuardIndex:
    """Which rules of one log type must run for an event; built once, queried per event.

    Each field path is looked up once per event, and the checks on it are folded into a bit mask
    memoised per distinct value, so a typical event costs one lookup and one dict hit per path.
    Only the ``_TESTS_PER_RULE`` tests on the paths most rules share are kept: a path read for one
    rule alone costs about as much as running that rule.
    """

    def __init__(self, guards: Sequence[Guard | None]) -> None:
        count = len(guards)
        self._all = tuple(range(count))
        self._count = count
        self._rules_mask = (1 << count) - 1
        popularity = Counter(test.ref.path for guard in guards if guard for test in guard.tests)
        slots: dict[tuple[str, ...], _Slot] = {}

        def add(
            path: tuple[str, ...], bit: int, ref: FieldRef, check: frozenset[object] | Requirement
        ) -> None:
            slots.setdefault(path, _Slot(path)).checks.append((bit, ref, check))

        for position, guard in enumerate(guards):
            if guard is None:
                continue
            bit = 1 << position
            simple = [test for test in guard.tests if not test.requires]
            simple.sort(key=lambda test: -popularity[test.ref.path])
            for test in simple[:_TESTS_PER_RULE]:
                add(test.ref.path, bit, test.ref, test.values)
            if not simple:  # a test with requirements reads more fields: only as a last resort
                test = min(guard.tests, key=lambda test: (len(test.requires), -popularity[test.ref.path]))
                add(test.ref.path, bit, test.ref, test.values)
                for requirement in test.requires:
                    add(requirement.ref.path, bit << count, requirement.ref, requirement)
        self._slots = tuple(slots.values())
        self._lookups = tuple(slot.lookup for slot in self._slots)
        self._memos = tuple(slot.memo for slot in self._slots)
        self._positions: dict[int, tuple[int, ...]] = {0: self._all}

    @property
    def paths(self) -> int:
        """Number of distinct field paths looked up per event."""
        return len(self._slots)

    def candidates(self, event: Mapping[str, object]) -> tuple[int, ...]:
        """Positions, in original order, of the rules that must run (a shared, read-only tuple)."""
        if not self._slots:
            return self._all
        try:
            raws = [lookup(event) for lookup in self._lookups]
        except Exception:
            # The rules' own lookups would fail the same way: let every rule run and report it.
            return self._all
        try:
            fired = reduce(or_, map(getitem, self._memos, raws))
        except (KeyError, TypeError):
            fired = self._fired(raws)
        rejected = fired & self._rules_mask & ~(fired >> self._count)
        found = self._positions.get(rejected)
        if found is None:
            found = tuple(position for position in self._all if not rejected >> position & 1)
            if len(self._positions) >= _CACHE_LIMIT:
                self._positions.clear()
            self._positions[rejected] = found
        return found

    def _fired(self, raws: list[object]) -> int:
        fired = 0
        for slot, raw in zip(self._slots, raws, strict=True):
            memo = slot.memo
            try:
                fired |= memo[raw]
            except KeyError:
                # Memoising on equal values is sound: every check depends only on == and on being a
                # str, and equal JSON scalars of different types (1, 1.0, True) agree on both.
                if len(memo) >= _CACHE_LIMIT:
                    memo.clear()
                mask = memo[raw] = slot.mask(raw)
                fired |= mask
            except TypeError:
                # An unhashable container: tests admit it, requirements fail on it.
                fired |= slot.mask(raw)
        return fired


# --------------------------------------------------------------------------------------------
# Intermediate form of expressions. Every node records ``needs``: requirements under which its
# evaluation cannot raise. ``_UNSAFE`` in needs marks code that is not understood (it may raise or
# act), which only matters where evaluation can reach it.

_UNSAFE = Requirement(FieldRef((), "item", None, ()), False)
_NO_NEEDS: frozenset[Requirement] = frozenset()
_UNKNOWN_NEEDS = frozenset({_UNSAFE})


@dataclass(frozen=True, slots=True)
class _Event:
    """The event parameter itself: only meaningful as a method receiver or a helper argument."""

    needs: frozenset[Requirement] = _UNKNOWN_NEEDS


@dataclass(frozen=True, slots=True)
class _Field:
    ref: FieldRef
    needs: frozenset[Requirement]


@dataclass(frozen=True, slots=True)
class _Const:
    value: object
    container: bool  # a literal tuple/list/set/frozenset of scalars (value is then a tuple)
    hashed: bool  # membership uses hashing (set/frozenset)
    mutable: bool = False  # a list or set object, which other code holding it could change
    needs: frozenset[Requirement] = _NO_NEEDS


@dataclass(frozen=True, slots=True)
class _Pred:
    """``ref in values`` (``positive``) or its negation; a bool."""

    ref: FieldRef
    values: frozenset[object]
    positive: bool
    needs: frozenset[Requirement]


@dataclass(frozen=True, slots=True)
class _Not:
    item: _Node
    needs: frozenset[Requirement]


@dataclass(frozen=True, slots=True)
class _BoolOp:
    """``and``/``or`` (short-circuit), or ``all([...])``/``any([...])`` (``eager``: all evaluated)."""

    is_and: bool
    eager: bool
    items: tuple[_Node, ...]
    needs: frozenset[Requirement]


@dataclass(frozen=True, slots=True)
class _Opaque:
    """A value of unknown content (``is_bool``: certainly a bool)."""

    is_bool: bool
    needs: frozenset[Requirement]


_Node = _Event | _Field | _Const | _Pred | _Not | _BoolOp | _Opaque
_UNKNOWN = _Opaque(False, _UNKNOWN_NEEDS)


def _needs(items: Iterable[_Node]) -> frozenset[Requirement]:
    return frozenset().union(*(item.needs for item in items))


def _is_bool(node: _Node) -> bool:
    if isinstance(node, _Pred | _Not):
        return True
    if isinstance(node, _BoolOp):
        return node.eager or all(_is_bool(item) for item in node.items)
    if isinstance(node, _Const):
        return type(node.value) is bool
    return isinstance(node, _Opaque) and node.is_bool


def _safe(node: _Node) -> bool:
    return _UNSAFE not in node.needs


# --------------------------------------------------------------------------------------------
# Region analysis for one field ``ref``. A claim ``(S, needs)`` means: whenever ref's value v is a
# scalar not in S and the requirements ``needs`` hold, the expression evaluates without raising or
# acting to a falsy value (``_false_claim``; exactly ``False`` when ``exact``) or a truthy one
# (``_true_claim``). ``None``: nothing provable.

_Claim = tuple[frozenset[object], frozenset[Requirement]]


def _intersect_claims(claims: Iterable[_Claim]) -> _Claim | None:
    """Union of skip regions: allowed values intersect, requirements add up."""
    result: _Claim | None = None
    for values, needs in claims:
        result = (values, needs) if result is None else (result[0] & values, result[1] | needs)
    return result


def _union_claims(claims: Sequence[_Claim | None]) -> _Claim | None:
    """Intersection of skip regions (every claim is needed): allowed values and requirements add up."""
    if not claims or any(claim is None for claim in claims):
        return None
    return (
        frozenset().union(*(c[0] for c in claims if c is not None)),
        frozenset().union(*(c[1] for c in claims if c is not None)),
    )


def _first_decides(
    items: Sequence[_Node], claim_of: Callable[[_Node], _Claim | None], exact: bool
) -> _Claim | None:
    """Short-circuit chain: the first item whose claim holds decides, if all before it were safe."""
    found: list[_Claim] = []
    before = _NO_NEEDS
    for item in items:
        claim = claim_of(item)
        if claim is not None:
            found.append((claim[0], claim[1] | before))
        if not _safe(item) or (exact and not _is_bool(item)):
            break
        before = before | item.needs
    return _intersect_claims(found)


def _all_evaluated(items: Sequence[_Node], claim_of: Callable[[_Node], _Claim | None]) -> _Claim | None:
    """all()/any() of a list: every item runs, then any one claim decides."""
    if not all(_safe(item) for item in items):
        return None
    found = _intersect_claims(claim for claim in map(claim_of, items) if claim is not None)
    return None if found is None else (found[0], found[1] | _needs(items))


def _false_claim(node: _Node, ref: FieldRef, exact: bool) -> _Claim | None:
    if isinstance(node, _Pred):
        return (node.values, node.needs) if node.ref == ref and node.positive else None
    if isinstance(node, _Const):
        falsy = node.value is False if exact else not node.value
        return (frozenset(), _NO_NEEDS) if falsy else None
    if isinstance(node, _Not):
        return _true_claim(node.item, ref)
    if not isinstance(node, _BoolOp):
        return None
    if node.is_and:
        if node.eager:
            return _all_evaluated(node.items, lambda item: _false_claim(item, ref, exact=False))
        return _first_decides(node.items, lambda item: _false_claim(item, ref, exact), exact)
    # ``or``/any(): falsy only when every item is; ``or`` then yields its last item.
    last = node.items[-1]
    claims = [_false_claim(item, ref, exact and item is last and not node.eager) for item in node.items]
    found = _union_claims(claims)
    if found is None or not node.eager:
        return found
    return (found[0], found[1] | _needs(node.items)) if all(map(_safe, node.items)) else None


def _true_claim(node: _Node, ref: FieldRef) -> _Claim | None:
    if isinstance(node, _Pred):
        return (node.values, node.needs) if node.ref == ref and not node.positive else None
    if isinstance(node, _Const):
        return (frozenset(), _NO_NEEDS) if node.value else None
    if isinstance(node, _Not):
        return _false_claim(node.item, ref, exact=False)
    if not isinstance(node, _BoolOp):
        return None
    if not node.is_and:
        if node.eager:
            return _all_evaluated(node.items, lambda item: _true_claim(item, ref))
        return _first_decides(node.items, lambda item: _true_claim(item, ref), exact=False)
    found = _union_claims([_true_claim(item, ref) for item in node.items])
    if found is None or not node.eager:
        return found
    return (found[0], found[1] | _needs(node.items)) if all(map(_safe, node.items)) else None


# --------------------------------------------------------------------------------------------
# What a module lets us trust: functions, literal constants and helper imports bound exactly once.


@dataclass(frozen=True)
class _ModuleFacts:
    functions: Mapping[str, ast.FunctionDef]
    constants: Mapping[str, _Const]
    imports: Mapping[str, tuple[str, str]]  # local name -> (module, attribute)
    bound: Mapping[str, int]


def _bound_names(tree: ast.AST) -> dict[str, int]:
    """How many times each name is bound anywhere under ``tree``, in any scope."""
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        names: Iterable[str] = ()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names = (node.id,)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = (node.name,)
        elif isinstance(node, ast.alias):
            names = ((node.asname or node.name).split(".")[0],)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names = node.names
        elif isinstance(node, ast.arg):
            names = (node.arg,)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names = (node.name,)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names = (node.rest,)
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _is_reflective(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _REFLECTIVE:
            return True
        if isinstance(node, ast.Attribute) and node.attr in _REFLECTIVE:
            return True
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return True
    return False


def _literal(node: ast.expr, bound: Mapping[str, int]) -> _Const | None:
    """A scalar constant, or a container display of scalar constants (optionally via a builtin)."""
    if isinstance(node, ast.Constant):
        return _Const(node.value, container=False, hashed=False) if type(node.value) in _SCALARS else None
    hashed = isinstance(node, ast.Set)
    mutable = isinstance(node, ast.Set | ast.List)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _CONTAINER_BUILDERS
        and node.func.id not in bound
        and len(node.args) == 1
        and not node.keywords
    ):
        hashed = node.func.id in ("set", "frozenset")
        mutable = node.func.id in ("set", "list")
        node = node.args[0]
    if not isinstance(node, ast.Tuple | ast.List | ast.Set):
        return None
    items = []
    for element in node.elts:
        if not isinstance(element, ast.Constant) or type(element.value) not in _SCALARS:
            return None
        items.append(element.value)
    return _Const(tuple(items), container=True, hashed=hashed, mutable=mutable)


def _read_only_use(node: ast.Name, parents: Mapping[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    if isinstance(parent, ast.Compare):
        return any(
            comparator is node and isinstance(op, ast.In | ast.NotIn)
            for op, comparator in zip(parent.ops, parent.comparators, strict=True)
        )
    if isinstance(parent, ast.For | ast.comprehension):
        return parent.iter is node
    if isinstance(parent, ast.Call):
        return (
            isinstance(parent.func, ast.Name)
            and parent.func.id in _NON_MUTATING_BUILTINS
            and any(arg is node for arg in parent.args)
        )
    return isinstance(parent, ast.FormattedValue)


@functools.lru_cache(maxsize=2048)
def _module_facts(source: str, importable: bool = False) -> _ModuleFacts | None:
    """What can be trusted in a module. A rule module cannot be imported by other code, so its
    mutable constants are safe once no code of its own mutates them; an ``importable`` (helper)
    module's lists and sets could be changed by any importer, so only immutable ones are kept."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if _is_reflective(tree):
        return None
    bound = _bound_names(tree)
    functions: dict[str, ast.FunctionDef] = {}
    constants: dict[str, _Const] = {}
    imports: dict[str, tuple[str, str]] = {}
    # Only unconditional top-level statements: they have all run before rule() can be called.
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and not statement.decorator_list:
            functions[statement.name] = statement
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            for alias in statement.names:
                imports[alias.asname or alias.name] = (statement.module, alias.name)
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and statement.value is not None:
                const = _literal(statement.value, bound)
                if const is not None and not (importable and const.mutable):
                    constants[targets[0].id] = const
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id in constants
            and constants[node.id].container
            and not _read_only_use(node, parents)
        ):
            del constants[node.id]  # may be mutated through an alias or a call
    return _ModuleFacts(
        functions={n: f for n, f in functions.items() if bound.get(n) == 1},
        constants={n: c for n, c in constants.items() if bound.get(n) == 1},
        imports={n: i for n, i in imports.items() if bound.get(n) == 1},
        bound=bound,
    )


# --------------------------------------------------------------------------------------------
# Translation of function code into the intermediate form, and the guard derivation.


@dataclass(frozen=True)
class _Scope:
    """Name resolution inside one function of one module."""

    facts: _ModuleFacts
    # Over-approximated (nested scopes included): a name wrongly taken as local is only refused.
    locals: frozenset[str]

    @classmethod
    def of(cls, facts: _ModuleFacts, function: ast.FunctionDef) -> _Scope:
        names = set(_bound_names(ast.Module(body=function.body, type_ignores=[])))
        names.update(arg.arg for arg in function.args.args)
        return cls(facts, frozenset(names))

    def builtin(self, name: str) -> bool:
        return name not in self.locals and name not in self.facts.bound


def _single_param(function: ast.FunctionDef) -> str | None:
    args = function.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
        return None
    return args.args[0].arg if len(args.args) == 1 else None


def _str_key(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and type(node.value) is str else None


def _default_value(node: ast.expr) -> object:
    """A default argument's value when it is a safe literal, else ``MISSING``."""
    if isinstance(node, ast.Constant) and type(node.value) in _SCALARS:
        return node.value
    # Empty non-mapping containers are fine: such values always admit the event. Mapping defaults
    # are refused because deep_get walks on inside them.
    if isinstance(node, ast.List | ast.Tuple) and not node.elts:
        return ()
    return MISSING


def _field(ref: FieldRef) -> _Field:
    # [] raises on a missing key and str methods on a non-str: only such values may then be skipped.
    needs = (
        _NO_NEEDS if ref.accessor != "item" and not ref.transform else frozenset({Requirement(ref, False)})
    )
    return _Field(ref, needs)


_Env = Mapping[str, _Node]


class _Analyzer:
    def __init__(self, helpers: Mapping[str, str]) -> None:
        self.helpers = helpers
        self.refs: set[FieldRef] = set()
        self.budget = _STATEMENT_BUDGET
        self._active: set[int] = set()
        self._results: dict[int, _Node] = {}

    # -- expressions ------------------------------------------------------------------------

    def expr(self, node: ast.expr, env: _Env, scope: _Scope) -> _Node:
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in scope.locals:
                return _UNKNOWN  # local, but not bound on this path
            return scope.facts.constants.get(node.id, _UNKNOWN)
        if isinstance(node, ast.Constant | ast.Tuple | ast.List | ast.Set):
            # A fresh display per evaluation: nothing can have mutated it yet.
            return _literal(node, scope.facts.bound) or _UNKNOWN
        if isinstance(node, ast.BoolOp):
            items = tuple(self.expr(value, env, scope) for value in node.values)
            return _BoolOp(isinstance(node.op, ast.And), False, items, _needs(items))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            item = self.expr(node.operand, env, scope)
            return _Not(item, item.needs)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left = self.expr(node.left, env, scope)
            right = self.expr(node.comparators[0], env, scope)
            if _safe(left) and _safe(right):
                return self.compare(node.ops[0], left, right)
            return _UNKNOWN
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            key = _str_key(node.slice)
            if key is not None and isinstance(env.get(node.value.id), _Event):
                return _field(FieldRef((key,), "item", None, ()))
            return _UNKNOWN
        if isinstance(node, ast.Call):
            return self.call(node, env, scope)
        return _UNKNOWN

    def compare(self, op: ast.cmpop, left: _Node, right: _Node) -> _Node:
        needs = left.needs | right.needs
        if isinstance(op, ast.Eq | ast.NotEq):
            field, other = (left, right) if isinstance(left, _Field) else (right, left)
            if isinstance(field, _Field) and isinstance(other, _Const) and not other.container:
                return self.pred(field.ref, (other.value,), isinstance(op, ast.Eq), needs)
            return _Opaque(True, needs)  # == between event values and constants never raises
        if isinstance(op, ast.Is | ast.IsNot):
            if isinstance(left, _Field) and isinstance(right, _Const) and right.value is None:
                return self.pred(left.ref, (None,), isinstance(op, ast.Is), needs)
            return _UNKNOWN
        if not isinstance(op, ast.In | ast.NotIn):
            return _UNKNOWN
        if isinstance(right, _Const) and right.container:
            if isinstance(left, _Field):
                if right.hashed:  # hashing needs a scalar
                    needs = needs | {Requirement(left.ref, False)}
                return self.pred(left.ref, right.value, isinstance(op, ast.In), needs)  # type: ignore[arg-type]
            if right.hashed and not (_is_bool(left) or (isinstance(left, _Const) and not left.container)):
                return _UNKNOWN
            return _Opaque(True, needs)
        if isinstance(left, _Const) and type(left.value) is str and isinstance(right, _Field):
            return _Opaque(True, needs | {Requirement(right.ref, True)})  # substring test
        return _UNKNOWN

    def pred(
        self, ref: FieldRef, values: Iterable[object], positive: bool, needs: frozenset[Requirement]
    ) -> _Pred:
        self.refs.add(ref)
        return _Pred(ref, frozenset(values), positive, needs)

    def call(self, node: ast.Call, env: _Env, scope: _Scope) -> _Node:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self.expr(func.value, env, scope)
            if isinstance(receiver, _Event):
                return self.event_method(func.attr, node)
            if isinstance(receiver, _Field) and not node.keywords:
                return self.str_method(receiver, func.attr, node.args, env, scope)
            return _UNKNOWN
        if not isinstance(func, ast.Name) or len(node.args) != 1 or node.keywords:
            return _UNKNOWN
        arg = node.args[0]
        if func.id in ("all", "any") and scope.builtin(func.id) and isinstance(arg, ast.List | ast.Tuple):
            items = tuple(self.expr(element, env, scope) for element in arg.elts)
            if not items:
                return _UNKNOWN
            return _BoolOp(func.id == "all", True, items, _needs(items))
        if func.id == "bool" and scope.builtin("bool"):
            item = self.expr(arg, env, scope)
            return _Not(_Not(item, item.needs), item.needs)
        if isinstance(self.expr(arg, env, scope), _Event) and func.id not in scope.locals:
            return self.helper_call(scope.facts, func.id)
        return _UNKNOWN

    def event_method(self, name: str, node: ast.Call) -> _Node:
        args = node.args
        keys = [_str_key(arg) for arg in args]
        if name == "get" and not node.keywords and len(args) in (1, 2) and keys[0] is not None:
            default = _default_value(args[1]) if len(args) == 2 else None
            if default is not MISSING:
                return _field(FieldRef((keys[0],), "get", default, ()))
        elif name == "deep_get" and args and None not in keys:
            default: object = None
            for keyword in node.keywords:
                if keyword.arg != "default":
                    return _UNKNOWN
                default = _default_value(keyword.value)
            if default is not MISSING:
                return _field(FieldRef(tuple(keys), "deep_get", default, ()))  # type: ignore[arg-type]
        return _UNKNOWN

    def str_method(
        self, receiver: _Field, name: str, args: list[ast.expr], env: _Env, scope: _Scope
    ) -> _Node:
        ref = receiver.ref
        if name in _STR_TRANSFORMS and not args:
            return _field(FieldRef(ref.path, ref.accessor, ref.default, (*ref.transform, name)))
        if name in _STR_PREDICATES and len(args) == 1:
            prefix = self.expr(args[0], env, scope)
            if isinstance(prefix, _Const) and all(
                type(item) is str for item in (prefix.value if prefix.container else (prefix.value,))
            ):
                return _Opaque(True, receiver.needs | {Requirement(ref, True)})
        return _UNKNOWN

    def helper_call(self, facts: _ModuleFacts, name: str) -> _Node:
        resolved = self.resolve(facts, name, depth=0)
        if resolved is None:
            return _UNKNOWN
        marker = id(resolved[1])
        if marker not in self._results:
            if marker in self._active:
                return _UNKNOWN  # recursion
            self._active.add(marker)
            try:
                self._results[marker] = self.function_value(*resolved)
            finally:
                self._active.discard(marker)
        return self._results[marker]

    def resolve(
        self, facts: _ModuleFacts, name: str, depth: int
    ) -> tuple[_ModuleFacts, ast.FunctionDef] | None:
        if name in facts.functions:
            return facts, facts.functions[name]
        if name in facts.imports and depth < 8:
            module, attribute = facts.imports[name]
            source = self.helpers.get(module)
            other = _module_facts(source, importable=True) if source is not None else None
            if other is not None:
                return self.resolve(other, attribute, depth + 1)
        return None

    def function_value(self, facts: _ModuleFacts, function: ast.FunctionDef) -> _Node:
        """A helper's result: its expression when it is a straight line, else an opaque value."""
        param = _single_param(function)
        if param is None:
            return _UNKNOWN
        scope = _Scope.of(facts, function)
        env: dict[str, _Node] = {param: _Event()}
        body = _strip_docstring(function.body)
        assigned = _NO_NEEDS
        while body and isinstance(body[0], ast.Assign | ast.AnnAssign):
            bound = self.assignment(body[0], env, scope)
            if bound is None:
                return _UNKNOWN
            env[bound[0]] = bound[1]
            assigned |= bound[1].needs
            body = body[1:]
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
            value = self.expr(body[0].value, env, scope)
            if isinstance(value, _Event):
                return _UNKNOWN
            # Inline the expression, unless the assignments before it can raise on their own.
            return _Opaque(_is_bool(value), value.needs | assigned) if assigned else value
        outcome = self.block(body, env, scope)
        if outcome is None:
            return _UNKNOWN
        needs, is_bool, falls_through = outcome
        return _Opaque(is_bool and not falls_through, needs)

    def block(
        self, body: Sequence[ast.stmt], env: Mapping[str, _Node], scope: _Scope
    ) -> tuple[frozenset[Requirement], bool, bool] | None:
        """A safe helper body: (needs, every return is a bool, may run off the end)."""
        needs = _NO_NEEDS
        is_bool = True
        local_env = dict(env)
        for statement in body:
            self.budget -= 1
            if self.budget < 0:
                return None
            if isinstance(statement, ast.Pass):
                continue
            if isinstance(statement, ast.Assign | ast.AnnAssign):
                bound = self.assignment(statement, local_env, scope)
                if bound is None:
                    return None
                local_env[bound[0]] = bound[1]
                needs |= bound[1].needs
            elif isinstance(statement, ast.Return):
                value = self.expr(statement.value, local_env, scope) if statement.value else _UNKNOWN
                if not _safe(value):
                    return None
                return needs | value.needs, is_bool and _is_bool(value), False
            elif isinstance(statement, ast.If):
                test = self.expr(statement.test, local_env, scope)
                branches = [
                    self.block(branch, local_env, scope) for branch in (statement.body, statement.orelse)
                ]
                if not _safe(test) or branches[0] is None or branches[1] is None:
                    return None
                needs |= test.needs | branches[0][0] | branches[1][0]
                is_bool = is_bool and branches[0][1] and branches[1][1]
                if not (branches[0][2] or branches[1][2]):
                    return needs, is_bool, False
                # A name bound inside a branch may or may not have been rebound: forget it.
                for name in _bound_names(statement):
                    local_env.pop(name, None)
            else:
                return None
        return needs, is_bool, True

    def assignment(self, statement: ast.stmt, env: _Env, scope: _Scope) -> tuple[str, _Node] | None:
        """A safe ``name = expr``, else None."""
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            return None
        if not isinstance(target, ast.Name):
            return None
        node = self.expr(value, env, scope)
        return (target.id, node) if _safe(node) else None

    # -- statements of the rule itself ------------------------------------------------------

    def region(
        self, body: Sequence[ast.stmt], env: _Env, scope: _Scope, ref: FieldRef | None
    ) -> _Claim | None:
        """Where running ``body`` returns exactly False, safely (``ref`` None: only collect refs)."""
        self.budget -= 1
        if self.budget < 0 or not body:
            return None  # running off the end returns None: an error, never skippable
        statement, rest = body[0], body[1:]
        if isinstance(statement, ast.Pass) or (
            isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        ):
            return self.region(rest, env, scope, ref)
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            bound = self.assignment(statement, env, scope)
            if bound is None:
                return None
            claim = self.region(rest, {**env, bound[0]: bound[1]}, scope, ref)
            return None if claim is None else (claim[0], claim[1] | bound[1].needs)
        if isinstance(statement, ast.Return):
            value = self.expr(statement.value, env, scope) if statement.value else _UNKNOWN
            return None if ref is None else _false_claim(value, ref, exact=True)
        if isinstance(statement, ast.If):
            test = self.expr(statement.test, env, scope)
            taken = self.region([*statement.body, *rest], env, scope, ref)
            skipped = self.region([*statement.orelse, *rest], env, scope, ref)
            if ref is None:
                return None
            # Skippable where the test is truthy and the body returns False, where it is falsy and
            # the rest does, or (a safe test) where both do.
            sides: list[_Claim] = []
            if taken is not None and (truthy := _true_claim(test, ref)) is not None:
                sides.append((truthy[0] | taken[0], truthy[1] | taken[1]))
            if skipped is not None and (falsy := _false_claim(test, ref, exact=False)) is not None:
                sides.append((falsy[0] | skipped[0], falsy[1] | skipped[1]))
            if taken is not None and skipped is not None and _safe(test):
                sides.append((taken[0] | skipped[0], test.needs | taken[1] | skipped[1]))
            return _intersect_claims(sides)
        return None


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[1:]
    return body


def derive_guard(
    rule_source: str, *, helpers: Mapping[str, str] = _NO_HELPERS, func_name: str = "rule"
) -> Guard | None:
    """The guard of ``func_name`` in ``rule_source``, or ``None`` when the rule must always run.

    ``helpers`` maps importable module names (global helpers) to their source, so that calls such as
    ``aws_cloudtrail_success(event)`` can be proven pure. The guard holds one test per field for
    which a condition could be proven; an event must pass all of them for the rule to run.
    """
    facts = _module_facts(rule_source)
    if facts is None or func_name not in facts.functions:
        return None
    function = facts.functions[func_name]
    param = _single_param(function)
    if param is None:
        return None
    analyzer = _Analyzer(helpers)
    scope = _Scope.of(facts, function)
    env = {param: _Event()}
    analyzer.region(function.body, env, scope, None)  # collects the fields that predicates test
    tests = []
    for ref in sorted(analyzer.refs, key=repr):
        analyzer.budget = _STATEMENT_BUDGET
        claim = analyzer.region(function.body, env, scope, ref)
        if claim is not None:
            own = {Requirement(ref, False), Requirement(ref, bool(ref.transform))}
            requires = tuple(sorted(claim[1] - own, key=repr))
            tests.append(FieldTest(ref, claim[0], requires))
    return Guard(tuple(tests)) if tests else None
