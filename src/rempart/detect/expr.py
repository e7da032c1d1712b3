"""A small, safe filter language over event fields, compiled to Python closures (no ``eval``).

Grammar (keywords are lower case)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | "true" | "false" | test
    test       := FIELD ( CMP literal | ["not"] "in" "[" literal ("," literal)* "]"
                        | "startswith" STRING | "endswith" STRING | "contains" STRING
                        | "matches" /REGEX/ | "exists" )
    CMP        := "==" | "!=" | "<" | "<=" | ">" | ">="
    literal    := STRING | NUMBER | "null"

Fields are ``Event`` attribute names or their ECS names (``event.action``, ``source.ip``...), plus
derived fields listed in ``DERIVED_FIELDS`` (``hour``, ``weekday``, ``ip24``, ``ip16``). The type of
every comparison is checked at compile time: comparing ``status`` with a string, or ``action``
with ``<``, is refused with the column where it happens.

``required_actions(node)`` tells the engine which ``event.action`` values can ever satisfy an
expression, so each event is only offered to the rules that may match it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Final, Generic, TypeVar, final
from zoneinfo import ZoneInfo

from rempart.events import ECS_FIELDS, FIELD_BY_ECS, Event

V = TypeVar("V")

Predicate = Callable[[Event], bool]
Getter = Callable[[Event], Any]


class ExprError(Exception):
    """A filter expression that does not parse or type-check; ``column`` is 1-based."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.message = message
        self.column = column


#: Attribute -> python type used for compile-time checks.
FIELD_TYPES: dict[str, type] = {
    "ts": float,
    "user_name": str,
    "organization_id": str,
    "source_ip": str,
    "user_agent": str,
    "method": str,
    "path": str,
    "query": str,
    "status": int,
    "bytes": int,
    "action": str,
    "outcome": str,
    "session_id": str,
    "beneficiary_token": str,
    "categories": tuple,
    "account_kind": str,
    "source": str,
    "line": int,
}

#: Local time zone used by the ``hour`` and ``weekday`` derived fields (the portal's users).
LOCAL_TZ = ZoneInfo("Europe/Paris")


def _offset_at(hour_bucket: int) -> int:
    """The portal's UTC offset, in seconds, during UTC hour number ``hour_bucket``."""
    dt = datetime.fromtimestamp(hour_bucket * 3600, tz=UTC).astimezone(LOCAL_TZ)
    delta = dt.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


class _LastHour:
    """The hour asked last and its offset: events come in time order, so the next call is
    nearly always for the same hour (a compiled attribute read instead of a dict lookup)."""

    __slots__ = ("hour", "offset")

    def __init__(self) -> None:
        self.hour = 0
        self.offset = _offset_at(0)


#: UTC hour number -> offset (a memo of ``_offset_at``), and the hour asked last.
_OFFSETS: Final[dict[int, int]] = {}
_LAST: Final = _LastHour()


def _utc_offset_for_hour(hour_bucket: int) -> int:
    last = _LAST
    if hour_bucket == last.hour:
        return last.offset
    off = _OFFSETS.get(hour_bucket)
    if off is None:
        off = _offset_at(hour_bucket)
        if len(_OFFSETS) >= 4096:
            _OFFSETS.clear()
        _OFFSETS[hour_bucket] = off
    last.hour = hour_bucket
    last.offset = off
    return off


def utc_offset(ts: float) -> int:
    """Seconds to add to UTC to get the portal's local time at ``ts``."""
    return _utc_offset_for_hour(int(ts) // 3600)


def local_strftime(ts: float, fmt: str) -> str:
    """``ts`` in the portal's local time, formatted (e.g. ``"%H:%M"`` for an explanation)."""
    return (datetime.fromtimestamp(ts, tz=UTC) + timedelta(seconds=utc_offset(ts))).strftime(fmt)


def local_day_span(ts: float) -> tuple[int, float, float]:
    """``(day, start, end)``: the local calendar day of ``ts`` (days since 1970-01-01 in the
    portal's time zone) and the span [start, end) of timestamps sharing it and its UTC hour.

    Within one UTC hour the offset is fixed, so the day changes only at local midnight; from 0
    on ``int(ts)`` is ``floor(ts)``, so any timestamp in the span has this day (times before
    1970 get an empty span). Callers cache the span to skip the lookup for the next reads."""
    t = int(ts)
    hour = t // 3600
    offset = _utc_offset_for_hour(hour)
    day = (t + offset) // 86400
    start = float(max(0, hour * 3600, day * 86400 - offset))
    end = float(min(hour * 3600 + 3600, (day + 1) * 86400 - offset))
    return day, start, end


def local_hour(ts: float) -> int:
    """Hour of day (0-23) in the portal's local time zone."""
    t = int(ts)
    return ((t + _utc_offset_for_hour(t // 3600)) // 3600) % 24


def local_weekday(ts: float) -> int:
    """Day of week in local time, Monday = 0."""
    t = int(ts)
    return (((t + _utc_offset_for_hour(t // 3600)) // 86400) + 3) % 7


def ip_prefix(ip: str | None, octets: int) -> str | None:
    """``a.b.c`` (octets=3) or ``a.b`` (octets=2) of an IPv4 address; IPv6: first 3 or 2 groups."""
    if not ip:
        return None
    sep = "." if "." in ip else ":"
    parts = ip.split(sep)
    return sep.join(parts[:octets])


def _hour(e: Event) -> int:
    t = int(e.ts)
    return ((t + _utc_offset_for_hour(t // 3600)) // 3600) % 24


def _weekday(e: Event) -> int:
    t = int(e.ts)
    return (((t + _utc_offset_for_hour(t // 3600)) // 86400) + 3) % 7


#: Address -> its /24 and /16 prefixes (memos: a login reads both, and an address logs in often).
_IP24: Final[dict[str, str | None]] = {}
_IP16: Final[dict[str, str | None]] = {}


def _prefix_memo(memo: dict[str, str | None], ip: str | None, octets: int) -> str | None:
    if ip is None:
        return None
    got = memo.get(ip, "")  # "": not memoised (the prefix of a non-empty address never is "")
    if got != "":
        return got
    got = ip_prefix(ip, octets)
    if len(memo) >= 100_000:
        memo.clear()
    memo[ip] = got
    return got


def _ip24(e: Event) -> str | None:
    return _prefix_memo(_IP24, e.source_ip, 3)


def _ip16(e: Event) -> str | None:
    return _prefix_memo(_IP16, e.source_ip, 2)


#: Derived fields: name -> (getter, type).
DERIVED_FIELDS: dict[str, tuple[Getter, type]] = {
    "hour": (_hour, int),
    "weekday": (_weekday, int),
    "ip24": (_ip24, str),
    "ip16": (_ip16, str),
}


def resolve_field(name: str) -> tuple[str, Getter, type] | None:
    """Canonical name, getter and type of a field (attribute, ECS or derived name)."""
    if name in DERIVED_FIELDS:
        getter, typ = DERIVED_FIELDS[name]
        return name, getter, typ
    attr = FIELD_BY_ECS.get(name, name)
    if attr in FIELD_TYPES:
        return attr, attrgetter(attr), FIELD_TYPES[attr]
    return None


def known_fields() -> list[str]:
    return sorted([*FIELD_TYPES, *ECS_FIELDS.values(), *DERIVED_FIELDS])


# --------------------------------------------------------------------------- tokenizer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<name>@?[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
_REGEX_RE = re.compile(r"/((?:[^/\\]|\\.)*)/([i]*)")
KEYWORDS = {"and", "or", "not", "in", "startswith", "endswith", "contains", "matches", "exists"}
KEYWORDS |= {"true", "false", "null"}


@dataclass(slots=True, frozen=True)
class Token:
    kind: str  # string, number, op, punct, name, kw, regex, end
    text: str
    value: Any
    col: int


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "/" and out and out[-1].kind == "kw" and out[-1].text == "matches":
            m = _REGEX_RE.match(text, pos)
            if not m:
                raise ExprError("unterminated regular expression", pos + 1)
            flags = re.IGNORECASE if "i" in m.group(2) else 0
            try:
                rx = re.compile(m.group(1), flags)
            except re.error as exc:
                raise ExprError(f"bad regular expression: {exc}", pos + 1) from None
            out.append(Token("regex", m.group(0), rx, pos + 1))
            pos = m.end()
            continue
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = m.lastgroup or ""
        tok = m.group(0)
        if kind == "string":
            out.append(Token("string", tok, _unescape(tok[1:-1]), pos + 1))
        elif kind == "number":
            out.append(Token("number", tok, float(tok) if "." in tok else int(tok), pos + 1))
        elif kind == "name":
            out.append(Token("kw" if tok in KEYWORDS else "name", tok, tok, pos + 1))
        elif kind != "ws":
            out.append(Token(kind, tok, tok, pos + 1))
        pos = m.end()
    out.append(Token("end", "", None, len(text) + 1))
    return out


# --------------------------------------------------------------------------- AST


@dataclass(slots=True, frozen=True)
class Const:
    value: bool


@dataclass(slots=True, frozen=True)
class Not:
    inner: Node


@dataclass(slots=True, frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Node, ...]


@dataclass(slots=True, frozen=True)
class Test:
    field: str
    op: str  # == != < <= > >= in notin startswith endswith contains matches exists
    value: Any


Node = Const | Not | BoolOp | Test


class _Parser:
    def __init__(self, text: str):
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def kw(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "kw" and tok.text == word:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        tok = self.take()
        if tok.kind != "punct" or tok.text != p:
            raise ExprError(f"expected {p!r}, found {tok.text or 'end of expression'!r}", tok.col)

    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise ExprError(f"unexpected {tok.text!r}", tok.col)
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.kw("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.kw("and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def unary(self) -> Node:
        if self.kw("not"):
            return Not(self.unary())
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.take()
            node = self.or_expr()
            self.expect_punct(")")
            return node
        if self.kw("true"):
            return Const(True)
        if self.kw("false"):
            return Const(False)
        return self.test()

    def literal(self, typ: type, field: str) -> Any:
        tok = self.take()
        if tok.kind == "kw" and tok.text == "null":
            return None
        if tok.kind == "string":
            if typ not in (str, tuple):
                raise ExprError(f"{field} is a number, compared with a string", tok.col)
            return tok.value
        if tok.kind == "number":
            if typ is str:
                raise ExprError(f"{field} is text, compared with a number", tok.col)
            return tok.value
        raise ExprError(f"expected a value, found {tok.text or 'end of expression'!r}", tok.col)

    def test(self) -> Node:
        tok = self.take()
        if tok.kind != "name":
            raise ExprError(f"expected a field name, found {tok.text or 'end'!r}", tok.col)
        resolved = resolve_field(tok.text)
        if resolved is None:
            raise ExprError(f"unknown field {tok.text!r}", tok.col)
        field, _getter, typ = resolved
        op_tok = self.peek()
        if op_tok.kind == "op":
            self.take()
            if op_tok.text in ("<", "<=", ">", ">=") and typ not in (int, float):
                raise ExprError(f"{op_tok.text} needs a numeric field, {field} is not", op_tok.col)
            if typ is tuple:
                raise ExprError(f"{field} is a list: use 'contains'", op_tok.col)
            value = self.literal(typ, field)
            if value is None and op_tok.text not in ("==", "!="):
                raise ExprError("null can only be compared with == or !=", op_tok.col)
            return Test(field, op_tok.text, value)
        negate = False
        if op_tok.kind == "kw" and op_tok.text == "not":
            self.take()
            negate = True
            op_tok = self.peek()
            if not (op_tok.kind == "kw" and op_tok.text == "in"):
                raise ExprError("expected 'in' after 'not'", op_tok.col)
        if self.kw("in"):
            self.expect_punct("[")
            values = [self.literal(typ, field)]
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
                values.append(self.literal(typ, field))
            self.expect_punct("]")
            return Test(field, "notin" if negate else "in", frozenset(values))
        if op_tok.kind == "kw" and op_tok.text in ("startswith", "endswith", "contains"):
            self.take()
            arg = self.take()
            if arg.kind != "string":
                raise ExprError(f"{op_tok.text} needs a quoted string", arg.col)
            if typ is not str and not (typ is tuple and op_tok.text == "contains"):
                raise ExprError(f"{op_tok.text} needs a text field, {field} is not", op_tok.col)
            return Test(field, op_tok.text, arg.value)
        if self.kw("matches"):
            arg = self.take()
            if arg.kind != "regex":
                raise ExprError("matches needs a /regular expression/", arg.col)
            if typ is not str:
                raise ExprError(f"matches needs a text field, {field} is not", op_tok.col)
            return Test(field, "matches", arg.value)
        if self.kw("exists"):
            return Test(field, "exists", None)
        raise ExprError(
            f"expected an operator after {tok.text!r}, found {op_tok.text or 'end'!r}", op_tok.col
        )


def parse(text: str) -> Node:
    """Parse and type-check ``text``; raises ``ExprError`` with a 1-based column."""
    return _Parser(text).parse()


# --------------------------------------------------------------------------- compilation


def _compile_test(t: Test) -> Predicate:
    resolved = resolve_field(t.field)
    assert resolved is not None
    _name, get, typ = resolved
    v = t.value
    op = t.op
    if op == "exists":
        if typ is tuple:
            return lambda e: bool(get(e))
        return lambda e: get(e) is not None
    if op == "==":
        return lambda e: get(e) == v
    if op == "!=":
        return lambda e: get(e) != v
    if op in ("<", "<=", ">", ">="):
        if op == "<":
            return lambda e: (x := get(e)) is not None and x < v
        if op == "<=":
            return lambda e: (x := get(e)) is not None and x <= v
        if op == ">":
            return lambda e: (x := get(e)) is not None and x > v
        return lambda e: (x := get(e)) is not None and x >= v
    if op == "in":
        return lambda e: get(e) in v
    if op == "notin":
        return lambda e: get(e) not in v
    if op == "startswith":
        return lambda e: (x := get(e)) is not None and x.startswith(v)
    if op == "endswith":
        return lambda e: (x := get(e)) is not None and x.endswith(v)
    if op == "contains":
        return lambda e: (x := get(e)) is not None and v in x
    if op == "matches":
        search = v.search
        return lambda e: (x := get(e)) is not None and search(x) is not None
    raise AssertionError(op)


def _fields_of(node: Node) -> set[str]:
    """Canonical names of the fields a node reads."""
    if isinstance(node, Test):
        resolved = resolve_field(node.field)
        return {resolved[0] if resolved is not None else node.field}
    if isinstance(node, Not):
        return _fields_of(node.inner)
    if isinstance(node, BoolOp):
        out: set[str] = set()
        for n in node.items:
            out |= _fields_of(n)
        return out
    return set()


def _probe(ts: float) -> Event:
    return Event(ts, "", "", "")


def _value_table(
    pred: Predicate, value_of: Callable[[Event], int], size: int, step: float
) -> list[bool]:
    """``pred`` at each value 0..size-1 of a derived field (``hour``, ``weekday``), evaluated on
    probe events ``step`` seconds apart from the epoch until every value has been met: a test
    on that field alone becomes one list read (``hour >= 22 or hour < 6``: no comparison)."""
    table = [False] * size
    seen = [False] * size
    k = 0
    while not all(seen):
        e = _probe(k * step + step / 2)  # mid-hour, mid-day: far from any change of value
        v = value_of(e)
        if not seen[v]:
            seen[v] = True
            table[v] = bool(pred(e))
        k += 1
    return table


def compile_node(node: Node) -> Predicate:
    """The predicate of a filter node: :func:`compile_pred`'s ``test`` (one compiler)."""
    return compile_pred(node).test


_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compile_range(node: BoolOp) -> Predicate | None:
    """Two comparisons of one field (``hour >= 22 or hour < 6``): the field read once. Each
    comparison is false on a missing value, as in ``_compile_test``."""
    if len(node.items) != 2:
        return None
    t1, t2 = node.items
    if not (isinstance(t1, Test) and isinstance(t2, Test)) or t1.field != t2.field:
        return None
    if t1.op not in _COMPARE or t2.op not in _COMPARE:
        return None
    resolved = resolve_field(t1.field)
    assert resolved is not None
    get = resolved[1]
    f1, v1, f2, v2 = _COMPARE[t1.op], t1.value, _COMPARE[t2.op], t2.value
    if node.op == "and":
        return lambda e: (x := get(e)) is not None and f1(x, v1) and f2(x, v2)
    return lambda e: (x := get(e)) is not None and (f1(x, v1) or f2(x, v2))


_FN: Final = 0
_TABLE: Final = 1
_AND: Final = 2
_OR: Final = 3
_NOT: Final = 4


@final
class Pred:
    """A compiled filter as a native object, for the engine's per-event dispatch: compiled
    code calls ``test`` directly, where calling a closure goes through Python's generic call
    protocol (about 400 instructions per event for an ``hour`` test joined by ``and`` with
    another test, on every read offered to ``TP-HARV-004``). One final class with a kind
    rather than a class per kind: the engine's dispatch entries are type-checked when
    unpacked, and a check against subclasses walks the type's bases at every event."""

    __slots__ = ("fn", "items", "kind", "table", "weekday")

    def __init__(
        self,
        kind: int,
        fn: Predicate | None = None,
        items: list[Pred] | None = None,
        table: list[bool] | None = None,
        weekday: bool = False,
    ):
        self.kind = kind
        self.fn: Predicate = fn if fn is not None else _false
        self.items: list[Pred] = items if items is not None else []
        self.table: list[bool] = table if table is not None else []
        self.weekday = weekday

    def test(self, e: Event) -> bool:
        kind = self.kind
        if kind == _TABLE:  # a node that reads only ``hour`` (or ``weekday``): one list read
            return self.table[_weekday(e) if self.weekday else _hour(e)]
        if kind == _AND:  # (mypyc compiles ``all`` and ``any`` over a generator to a loop)
            return all(p.test(e) for p in self.items)
        if kind == _OR:
            return any(p.test(e) for p in self.items)
        if kind == _NOT:
            return not self.items[0].test(e)
        return bool(self.fn(e))


def _false(e: Event) -> bool:
    return False


def as_pred(fn: Predicate) -> Pred:
    """A predicate function as a :class:`Pred`."""
    return Pred(_FN, fn=fn)


def _true(e: Event) -> bool:
    return True


def compile_pred(node: Node) -> Pred:
    """The filter as a :class:`Pred`: ``and``, ``or``, ``not`` native, a node that reads only
    ``hour`` or only ``weekday`` (values in a small fixed range) evaluated once per value at
    compile time (a table), two comparisons of one field (:func:`_compile_range`) and the other
    tests as closures (:func:`_compile_test`)."""
    return _build(node, tables=True)


def _build(node: Node, tables: bool) -> Pred:
    if isinstance(node, Const):
        return as_pred(_true if node.value else _false)
    if tables:
        fields = _fields_of(node)
        if fields == {"hour"}:
            return Pred(_TABLE, table=_value_table(_build(node, False).test, _hour, 24, 3600.0))
        if fields == {"weekday"}:
            table = _value_table(_build(node, False).test, _weekday, 7, 86400.0)
            return Pred(_TABLE, table=table, weekday=True)
    if isinstance(node, Not):
        return Pred(_NOT, items=[_build(node.inner, tables)])
    if isinstance(node, BoolOp):
        ranged = _compile_range(node)
        if ranged is not None:
            return as_pred(ranged)
        items = [_build(n, tables) for n in node.items]
        return Pred(_AND if node.op == "and" else _OR, items=items)
    return as_pred(_compile_test(node))


def _strip_actions(node: Node, actions: frozenset[str]) -> Node:
    """Drop top-level action tests already guaranteed by the engine's per-action index."""

    def implied(n: Node) -> bool:
        if not (isinstance(n, Test) and n.field == "action"):
            return False
        if n.op == "==":
            return actions <= {n.value}
        return n.op == "in" and actions <= n.value

    if implied(node):
        return Const(True)
    if isinstance(node, BoolOp) and node.op == "and":
        kept = tuple(n for n in node.items if not implied(n))
        if not kept:
            return Const(True)
        return kept[0] if len(kept) == 1 else BoolOp("and", kept)
    return node


def compile_filter(text: str) -> tuple[Predicate, frozenset[str] | None]:
    """Predicate and the set of actions it can match (``None`` when any action may match).

    The predicate assumes the event's action is in that set (the engine only offers such
    events), so action tests that only restate it are compiled away.
    """
    return compile_filter_node(parse(text))


def compile_filter_node(node: Node) -> tuple[Predicate, frozenset[str] | None]:
    """:func:`compile_filter` of a parsed filter."""
    actions = required_actions(node)
    if actions is not None:
        node = _strip_actions(node, actions)
    return compile_node(node), actions


def specialize(node: Node, known: dict[str, Any]) -> Node:
    """``node`` with the tests on fields of known value (e.g. action, outcome) folded away.

    The result matches an event with those field values exactly when ``node`` does, so the
    engine can compile one residual predicate per (action, outcome) and often none at all.
    """
    if isinstance(node, Test):
        resolved = resolve_field(node.field)
        if resolved is not None and resolved[0] in known:
            # Only the known field is read: the required ones get placeholder values.
            probe = Event(**{"ts": 0.0, "source_ip": "", "action": "", "outcome": "", **known})
            return Const(bool(_compile_test(node)(probe)))
        return node
    if isinstance(node, Not):
        inner = specialize(node.inner, known)
        return Const(not inner.value) if isinstance(inner, Const) else Not(inner)
    if isinstance(node, BoolOp):
        items: list[Node] = []
        for n in node.items:
            sub = specialize(n, known)
            if isinstance(sub, Const):
                if sub.value != (node.op == "and"):
                    return Const(sub.value)  # false in an "and", true in an "or"
                continue  # neutral element
            items.append(sub)
        if not items:
            return Const(node.op == "and")
        return items[0] if len(items) == 1 else BoolOp(node.op, tuple(items))
    return node


def specialized(node: Node, action: str, outcome: str) -> bool | Pred:
    """The filter ``node`` for the events of this action and outcome: True or False when those
    decide it, else the predicate of what is left (see ``specialize``)."""
    left = specialize(node, {"action": action, "outcome": outcome})
    return bool(left.value) if isinstance(left, Const) else compile_pred(left)


@final
class ByActionOutcome(Generic[V]):
    """What ``build(action, outcome)`` gives, built once per (action, outcome) met: the
    dispatch of the engine and the step tests of a sequence rule, where filters are
    specialised on the two fields every event has.

    ``get`` is on the per-event path. Two lookups by string are cheaper than building and
    hashing an (action, outcome) key, and consecutive events mostly share both: the last pair
    met is compared first (two string comparisons). It starts as ("", ""), so that it is right
    for any event.
    """

    def __init__(self, build: Callable[[str, str], V]) -> None:
        self._build = build
        self.built: dict[str, dict[str, V]] = {}
        self._action = ""
        self._outcome = ""
        self._last: V = self._make("", "")

    def _make(self, action: str, outcome: str) -> V:
        value = self._build(action, outcome)
        self.built.setdefault(action, {})[outcome] = value
        return value

    def get(self, action: str, outcome: str) -> V:
        if action == self._action and outcome == self._outcome:
            return self._last
        by_outcome = self.built.get(action)
        got = by_outcome.get(outcome) if by_outcome is not None else None
        value = got if got is not None else self._make(action, outcome)
        self._action = action
        self._outcome = outcome
        self._last = value
        return value


def required_actions(node: Node) -> frozenset[str] | None:
    """Actions an event must have to satisfy ``node`` (``None``: not constrained)."""
    if isinstance(node, Test) and node.field == "action":
        if node.op == "==" and isinstance(node.value, str):
            return frozenset([node.value])
        if node.op == "in":
            return frozenset(x for x in node.value if isinstance(x, str))
        return None
    if isinstance(node, Const) and not node.value:
        return frozenset()
    if isinstance(node, BoolOp):
        subs = [required_actions(n) for n in node.items]
        if node.op == "and":
            known = [s for s in subs if s is not None]
            if not known:
                return None
            out = known[0]
            for s in known[1:]:
                out = out & s
            return out
        if any(s is None for s in subs):
            return None
        return frozenset().union(*[s for s in subs if s is not None])
    return None
