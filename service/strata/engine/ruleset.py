"""Compiled rulesets: the shared machinery every kind builds on.

A ruleset is compiled once, when it loads: every expression is parsed and type
checked against the profile schema, derived facts, constants and the kind's
own inputs. All problems are collected, each with the rule id and the path of
the field (``stages.2.when``), and raised together: nothing partial loads.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from rule_engine import types as re_types

from strata.engine.compiler import Explained
from strata.engine.decision import ALREADY_PLAIN, Decision, RuleHit, plain
from strata.engine.expressions import Expression, ExpressionError, boolean, compile_condition
from strata.engine.facts import DERIVED_FACTS, Clock, Facts, Memo
from strata.engine.limits import LIMITS, exceeded
from strata.engine.schema import ProfileSchema
from strata.engine.spec import RulesetBase
from strata.errors import EvaluationError, Problem, RuleFileError, StrataError

DataType = re_types.DataType
SpecT = TypeVar("SpecT", bound=RulesetBase)
T = TypeVar("T")
D = TypeVar("D")


class Compiler:
    """Compiles a file's expressions, collecting every problem instead of stopping.

    ``types`` starts with the names every rule may read (profile fields,
    derived facts, the file's constants); a kind adds its own inputs to it
    (``scores``, ``event``, ``lifecycle``) before compiling the rules that
    read them.

    The file's expressions together may have at most ``LIMITS.file_nodes`` syntax tree nodes: past
    that, the rest are not compiled, so a publish costs at most that much work (see ``limits``).
    """

    def __init__(self, schema: ProfileSchema, constants: Mapping[str, Any]) -> None:
        self.schema = schema
        field_types = schema.rule_types()
        self.types = base_types(field_types, constants)
        self._plain_fields = {
            name: rule_type
            for name, rule_type in field_types.items()
            if schema.fields[name].type.scalar != "date"
        }
        self.problems: list[Problem] = []
        #: Each name an expression reads -> the rules (or fields) that read it.
        self.reads: dict[str, set[str]] = {}
        self.nodes = 0
        for name in constants:
            if name in schema.fields or name in DERIVED_FACTS:
                self.problem(f"constant {name!r} hides a profile field or derived fact", f"constants.{name}")

    def expression(
        self,
        text: str | float,
        path: str,
        rule: str | None,
        make: Callable[[str, Mapping[str, Any], frozenset[str]], Expression],
    ) -> Expression | None:
        if self.nodes > LIMITS.file_nodes:
            return None  # reported once, where the budget ran out
        try:
            expression = make(str(text), self.types, self.profile_fields())
        except ExpressionError as exc:
            self.problems.append(Problem(str(exc), rule=rule, field=path))
            return None
        for name in expression.reads:
            self.reads.setdefault(name, set()).add(rule or path)
        self.nodes += expression.nodes
        if self.nodes > LIMITS.file_nodes:
            self.problem(
                exceeded("the number of syntax tree nodes in the file", self.nodes, LIMITS.file_nodes),
                path,
                rule,
            )
        return expression

    def choices(self, field: str, rules: Sequence[Any], result: Callable[[Any], T]) -> list[Choice[T]]:
        """The rules listed under ``field`` (``stages``, ``tags``...), each with its condition compiled,
        for a ``FirstMatch`` or ``AllMatches``; a rule whose condition does not compile is left out,
        its problem recorded."""
        return [
            Choice(rule.id, when, result(rule), rule.reason)
            for index, rule in enumerate(rules)
            if (when := self.expression(rule.when, f"{field}.{index}.when", rule.id, compile_condition))
        ]

    def profile_fields(self) -> frozenset[str]:
        """Fields whose rule value is the parsed profile's value as is, so compiled rules read them
        there: not dates (a date is read as local midnight), and not hidden by a constant, a derived
        fact or an input of the kind (their types replaced the field's in ``types``)."""
        return frozenset(
            name for name, rule_type in self._plain_fields.items() if self.types.get(name) is rule_type
        )

    def problem(self, message: str, path: str | None = None, rule: str | None = None) -> None:
        self.problems.append(Problem(message, rule=rule, field=path))

    def finish(self, name: str) -> None:
        if self.problems:
            raise RuleFileError(f"ruleset {name!r} does not compile", self.problems)


def base_types(field_types: Mapping[str, Any], constants: Mapping[str, Any]) -> dict[str, Any]:
    """The names every rule may read: profile fields, derived facts, constants."""
    types = dict(field_types)
    for name, fact in DERIVED_FACTS.items():
        types[name] = fact.type
    for name, value in constants.items():
        types[name] = DataType.from_value(value)
    return types


def hit(rule_id: str, reason: str, facts: Facts, *expressions: Expression | None) -> RuleHit:
    """A rule hit with the values of every fact its expressions read."""
    if len(expressions) == 1 and expressions[0] is not None:
        return read_facts(rule_id, reason, facts, expressions[0])
    if facts.skip_facts:
        return RuleHit(rule_id, reason)
    names = sorted({name for expr in expressions if expr for name in expr.reads})
    return RuleHit(rule_id, reason, {name: plain(facts[name]) for name in names})


def read_facts(rule_id: str, reason: str, facts: Facts, expression: Expression) -> RuleHit:
    """A rule hit with the plain values of the facts ``expression`` read, in name order."""
    if facts.skip_facts:
        return RuleHit(rule_id, reason)
    known, profile = facts.known, facts.profile
    values = {}
    for name, from_profile in expression.sources:  # a loop, not a comprehension: no frame of its own
        value = profile[name] if from_profile else known[name]
        values[name] = value if value.__class__ in ALREADY_PLAIN else plain(value)
    return RuleHit(rule_id, reason, values)


def failure(ruleset: str, rule: str, what: str, exc: ExpressionError) -> EvaluationError:
    """A failed expression, named by its ruleset, its rule and its field."""
    return EvaluationError(
        f"ruleset {ruleset!r} failed while evaluating", [Problem(str(exc), rule=rule, field=what)]
    )


def evaluation_failed(ruleset: str, exc: Exception) -> EvaluationError:
    """An unexpected failure inside a ruleset's evaluation, by its type only (its text may hold data)."""
    return EvaluationError(
        f"ruleset {ruleset!r} failed while evaluating", [Problem(f"{type(exc).__name__} while evaluating")]
    )


def evaluate(expr: Expression, facts: Facts, ruleset: str, rule: str, what: str) -> Any:
    """Run one expression; a failure names the ruleset, the rule and the field."""
    try:
        return expr.test(facts) if what == "when" else expr.evaluate(facts)
    except ExpressionError as exc:
        raise failure(ruleset, rule, what, exc) from None


@dataclass(frozen=True)
class Choice(Generic[T]):
    """A first-match rule: its condition, what it yields, and its reason."""

    id: str
    when: Expression
    result: T
    reason: str

    def hit(self, facts: Facts) -> RuleHit:
        """This rule decided: the values of the facts its condition read."""
        if facts.skip_facts:
            return self.bare_hit
        return read_facts(self.id, self.reason, facts, self.when)

    @functools.cached_property
    def bare_hit(self) -> RuleHit:
        """The hit without the values of the facts, built once (immutable, as a ruleset's default)."""
        return RuleHit(self.id, self.reason)


class Chain(Generic[T]):
    """A ruleset's rules of one kind (stages, segments, tags, actions, badges), in file order, and
    one way of matching them: the first that holds (``FirstMatch``) or all that hold (``AllMatches``).

    Their conditions are also compiled together, at load, into one function (``Expression.chain``):
    a request then makes one call instead of one per rule, and reads each fact once; a second one
    builds each match's hit with the values of the facts it read, for explanations. Each condition
    keeps its own fallback to the interpreter, and the matches and their explanations are the same
    as rule by rule (which is how the interpreter path still runs).
    """

    takes_first: ClassVar[bool]

    def __init__(
        self,
        ruleset: str,
        choices: list[Choice[T]],
        decision: Callable[[tuple[RuleHit, ...], T], Any] | None = None,
    ) -> None:
        """``decision``: a match gives ``decision((hit,), head)`` instead of ``(head, hit)``, built
        in the compiled code (see ``Explained.decision``); without the facts' values, it is built
        once, here (a decision is immutable, as the hits and the default already shared are)."""
        self.ruleset = ruleset
        self.choices = choices
        self.decision = decision
        conditions = [choice.when for choice in choices]
        heads = [self.head(choice) for choice in choices]
        bare = [self.match(head, choice.bare_hit) for head, choice in zip(heads, choices, strict=True)]
        explained = Explained(
            reads=[choice.when.reads for choice in choices],
            heads=heads,
            hits=[(choice.id, choice.reason) for choice in choices],
            hit=RuleHit,
            slow=self._explain,
            decision=decision,
        )
        first = self.takes_first
        #: The compiled chains (None where no condition compiled): the matches without the facts'
        #: values (``Facts.skip_facts``), and explained. ``Expression.use_compiled`` says whether to use them.
        self.bare = Expression.chain(conditions, first, self._retry, self._not_boolean, bare)
        self.explained = Expression.chain(conditions, first, self._retry, self._not_boolean, bare, explained)

    def head(self, choice: Choice[T]) -> Any:
        """What a match gives with its hit: the rule's result (``FirstMatch``) or the rule itself."""
        raise NotImplementedError

    def match(self, head: Any, hit: RuleHit) -> Any:
        """What a match gives: ``(head, hit)``, or its decision (see ``__init__``)."""
        return (head, hit) if self.decision is None else self.decision((hit,), head)

    def _explain(self, index: int, facts: Facts) -> Any:
        """A match with its hit read from the facts, where the chain's code could not build it."""
        choice = self.choices[index]
        return self.match(self.head(choice), choice.hit(facts))

    def __iter__(self) -> Iterator[Choice[T]]:
        return iter(self.choices)

    def __len__(self) -> int:
        return len(self.choices)

    def _retry(self, index: int, facts: Facts, failed: BaseException | None) -> bool:
        choice = self.choices[index]
        try:
            return choice.when.retest(facts, failed)
        except ExpressionError as exc:
            raise failure(self.ruleset, choice.id, "when", exc) from None

    def _not_boolean(self, index: int, result: Any) -> None:
        try:
            boolean(result)
        except ExpressionError as exc:
            raise failure(self.ruleset, self.choices[index].id, "when", exc) from None

    def _test(self, choice: Choice[T], facts: Facts) -> bool:
        try:
            return choice.when.test(facts)
        except ExpressionError as exc:
            raise failure(self.ruleset, choice.id, "when", exc) from None


class FirstMatch(Chain[T]):
    """Rules of which the first that holds decides (stages, segments)."""

    takes_first = True

    def first(self, facts: Facts, default: D) -> Any:
        """What the first rule whose condition holds gives (``match``): its result and its hit, or its
        decision; else ``default`` (a ruleset's default, built at load: ``(result, default_hit)``,
        or its decision)."""
        if self.bare is None or not Expression.use_compiled:
            for choice in self.choices:
                if self._test(choice, facts):
                    return self.match(choice.result, choice.hit(facts))
            return default
        found = (self.bare if facts.skip_facts else self.explained)(facts)
        return default if found is None else found

    def head(self, choice: Choice[T]) -> T:
        return choice.result


class AllMatches(Chain[T]):
    """Rules of which every one that holds counts (tags, actions, badges)."""

    takes_first = False

    def all(self, facts: Facts) -> list[tuple[Choice[T], RuleHit]]:
        """Every rule whose condition holds, in order, with its hit."""
        choices = self.choices
        if self.bare is None or not Expression.use_compiled:
            return [(choice, choice.hit(facts)) for choice in choices if self._test(choice, facts)]
        found: list[tuple[Choice[T], RuleHit]] = (self.bare if facts.skip_facts else self.explained)(facts)
        return found

    def head(self, choice: Choice[T]) -> Choice[T]:
        return choice


class CompiledRuleset(Generic[SpecT]):
    """A loaded ruleset: its spec, checksum and compiled expressions."""

    kind: str

    def __init__(self, spec: SpecT, checksum: str, compiler: Compiler) -> None:
        self.spec = spec
        self.name = spec.name
        self.checksum = checksum
        self.schema = compiler.schema
        self.constants: dict[str, Any] = dict(spec.constants)
        #: The facts, fields, constants and inputs the rules read -> the rules reading each: what a
        #: reviewer checks before activating (the compiler fills it as the kind compiles its rules).
        self.reads: Mapping[str, set[str]] = compiler.reads
        self._stamp = {"ruleset": self.name, "checksum": self.checksum}

    def facts(
        self,
        profile: Mapping[str, Any],
        clock: Clock,
        memo: Memo | None = None,
        answers: dict[Any, Any] | None = None,
        skip_facts: bool = False,
    ) -> Facts:
        """The facts for an already parsed profile (see ``ProfileSchema.parse``).

        ``memo`` and ``answers``: the request's, when several rulesets decide about one profile at
        one clock (``Decide``): derived facts, and the answers of rulesets an intervention builds
        on, are then worked out once for all of them. ``skip_facts``: see ``Facts``.
        """
        return Facts(profile, clock, self.constants, memo, answers, skip_facts)

    def memoized(self, facts: Facts, work: Callable[[Facts], T]) -> T:
        """``work(facts)``, once per request that shares its answers: an intervention building on
        this ruleset reuses the answer the request already asked of it (and the other way round).
        Keyed by this object, so another version of the ruleset never reads this one's answer."""
        answers = facts.answers
        if answers is None:
            return work(facts)
        if self not in answers:
            answers[self] = work(facts)
        answer: T = answers[self]
        return answer

    def evaluate(
        self, raw_profile: Mapping[str, Any], as_of: dt.datetime, event: Mapping[str, Any] | None = None
    ) -> Decision:
        """Parse a JSON profile against the schema, then decide at ``as_of``."""
        profile = self.schema.parse(raw_profile)
        return self.decide(self.facts(profile, Clock.for_profile(as_of, profile)), event)

    def stamp(self) -> dict[str, str]:
        return self._stamp

    def decide(self, facts: Facts, event: Mapping[str, Any] | None = None) -> Decision:
        raise NotImplementedError


def decide_failing_closed(
    ruleset: CompiledRuleset[Any], facts: Facts, event: Mapping[str, Any] | None = None
) -> Decision:
    """``ruleset.decide``, where a defect (any failure that is not already a Strata error) becomes
    ``evaluation_failed`` named by the ruleset: never a default answer, never a stray exception.
    The request path and shadow runs both decide this way."""
    try:
        return ruleset.decide(facts, event)
    except StrataError:
        raise
    except Exception as exc:
        raise evaluation_failed(ruleset.name, exc) from exc
