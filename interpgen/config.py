"""The recipe converter: TOML-shaped data <-> frozen attrs classes, strictly.

A ``Part("interpolant")`` field holds a registered part: a table with a ``name`` key (or just the name),
looked up when the recipe is loaded. Scalars are strict (``3.7`` is no int, ``"false"`` no bool; an int
is a float). Every problem is reported at once with its path: ``unknown interpolant 'linaer'; installed:
linear, trig @ interpolant.name``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.v import transform_error

from interpgen.registry import Registry, UnknownNameError


#: The ``name`` a recipe gives a part that was the user's own Python object (no plugin registers
#: it): such a recipe records the class but cannot rebuild it (``Pipeline.load`` takes the object).
USER_PART = "python-object"
_TOML_VALUES = (str, int, float, bool, list, tuple, dict, Mapping)


class RecipeError(ValueError):
    """A recipe (or part table) is invalid; ``problems`` lists each one with its path."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems, self.source = problems, source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s){f' in {source}' if source else ''}:\n{lines}")


@attrs.frozen
class _PartKind:
    kind: str


def Part(kind: str) -> Any:  # noqa: N802 - reads as a type in annotations
    """Annotation for a field that holds a registered part of ``kind``: ``gamma: Part("gamma")``."""
    return Annotated[object, _PartKind(kind)]


def part_kind(tp: Any) -> str | None:
    return next((meta.kind for meta in getattr(tp, "__metadata__", ()) if isinstance(meta, _PartKind)), None)


_SCALARS = (int, float, bool, str)


def _scalar_or_tuple(tp: Any) -> tuple[type, bool] | None:
    """``(S, optional)`` when ``tp`` is ``S | tuple[S, ...]`` (maybe ``| None``) for a scalar S."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(tp)
    rest = [a for a in args if a is not type(None)]
    scalars = [a for a in rest if a in _SCALARS]
    tuples = [a for a in rest if typing.get_origin(a) is tuple]
    if len(rest) != 2 or len(scalars) != 1 or len(tuples) != 1 or typing.get_args(tuples[0]) != (scalars[0], Ellipsis):
        return None
    return scalars[0], type(None) in args


class _NameError(ValueError):
    """Raised for an unknown part name; reported at ``<path>.name``."""


#: What each scalar type accepts (bools are not numbers) and how a refusal names it.
_SCALAR_RULES: dict[type, tuple[tuple[type, ...], str]] = {float: ((int, float), "a number"), int: ((int,), "an integer"),
                                                         bool: ((bool,), "true or false"), str: ((str,), "a string")}


def _strict_scalar(expected: type) -> Callable[[Any, type], Any]:
    accepted, what = _SCALAR_RULES[expected]

    def hook(value: Any, _: type) -> Any:
        if not isinstance(value, accepted) or (expected is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {what}, got {type(value).__name__} {value!r}")
        if isinstance(value, int) and not -2**63 <= value < 2**63:  # TOML integers are 64-bit
            raise ValueError(f"expected an integer in [-2**63, 2**63 - 1] (TOML's 64 bits), got {value}")
        return float(value) if expected is float else value

    return hook


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        names = ", ".join(sorted(exc.extra_fields))
        accepted = ", ".join(a.name for a in attrs.fields(exc.cl) if a.init) if attrs.has(exc.cl) else ""
        return f"unknown parameter(s) {names}; accepted: {accepted or '(none)'}"
    if isinstance(exc, KeyError) and exc.args:
        return f"required parameter {exc.args[0]!r} is missing"
    if isinstance(exc, (TypeError, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _with_name_note(exc: Exception, cl: type) -> ClassValidationError:
    """Wrap an error so ``transform_error`` reports it at ``<field>.name``."""
    exc.__notes__ = [cattrs.errors.AttributeValidationNote("Structuring part @ attribute name", "name", str)]
    return ClassValidationError("invalid part name", [exc], cl)


def _table(cl: type, structure: Callable[[Any, type], Any]) -> Callable[[Any, type], Any]:
    """Structure ``cl`` from a table only: ``train = 5`` is refused naming the table's first keys."""
    def hook(value: Any, tp: type) -> Any:
        if isinstance(value, Mapping):
            return structure(value, tp)
        keys = ", ".join(a.name for a in attrs.fields(cl)[:3])
        raise TypeError(f"this table cannot be set to a value (got {type(value).__name__} {value!r}); set its keys "
                        f"instead ({keys}, ...)")
    return hook


class RecipeConverter:
    """A cattrs converter that knows the registry's parts."""

    def __init__(self, registry: Registry):
        self.registry = registry
        conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
        for scalar in (int, float, bool, str):
            conv.register_structure_hook(scalar, _strict_scalar(scalar))
        conv.register_structure_hook_func(lambda t: part_kind(t) is not None, self._structure_part)
        conv.register_unstructure_hook_func(lambda t: part_kind(t) is not None, lambda v: self.unstructure_part(v))
        conv.register_structure_hook_func(lambda t: _scalar_or_tuple(t) is not None, self._structure_scalar_or_tuple)
        conv.register_structure_hook_factory(attrs.has, lambda cl: _table(cl, conv.gen_structure_attrs_fromdict(cl)))
        self.cattrs = conv
        for configure in registry.converter_hooks:  # plugins' interpgen_configure_converter
            configure(converter=conv)

    def _structure_scalar_or_tuple(self, value: Any, tp: Any) -> Any:
        """A number or a list of numbers (``std = 1.0`` or ``std = [1.0, 2.0]``), strictly."""
        scalar, optional = _scalar_or_tuple(tp)  # type: ignore[misc]
        if value is None and optional:
            return None
        if isinstance(value, (list, tuple)):
            return self.cattrs.structure(value, tuple[scalar, ...])  # type: ignore[valid-type]
        return self.cattrs.structure(value, scalar)

    # -- parts ------------------------------------------------------------------------------
    def _structure_part(self, value: Any, tp: Any) -> Any:
        kind = part_kind(tp)
        assert kind is not None
        if not isinstance(value, _TOML_VALUES) and value is not None:
            return value  # a params object or the user's own part (Python API)
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a {kind} name or a table with a 'name' key, got {type(value).__name__}")
        table = dict(value)
        name = table.pop("name", None)
        if name is None:
            raise _with_name_note(KeyError("name"), dict)
        if not isinstance(name, str):
            raise _with_name_note(TypeError(f"expected a string, got {type(name).__name__} {name!r}"), dict)
        if name == USER_PART:
            cls = table.get("class", "?")
            raise _with_name_note(_NameError(
                f"this {kind} was the user's own Python object (class {cls}), which a recipe cannot rebuild: "
                f"load the run in Python and pass the same object, Pipeline.load(RUN, "
                f"{'data' if kind == 'dataset' else kind}=...)"), dict)
        try:
            entry = self.registry.get(kind, name)
        except UnknownNameError as exc:
            raise _with_name_note(_NameError(str(exc)), dict) from None
        return self.cattrs.structure(table, entry.params)

    def unstructure_part(self, value: Any) -> Any:
        entry = self.registry.entry_for(value)
        if entry is None:  # the user's own object: recorded by class, rebuilt only by Pipeline.load(..., key=obj)
            return {"name": USER_PART, "class": f"{type(value).__module__}.{type(value).__qualname__}"}
        return {"name": entry.name, **self.cattrs.unstructure(value, type(value))}

    def structure_part(self, kind: str, value: Any, *, path: str = "") -> Any:
        """Structure one part table (``{"name": ..., **params}``) of ``kind``."""
        return self.structure(value, Part(kind), path=path)

    # -- whole documents ------------------------------------------------------------------
    def structure(self, data: Any, tp: Any, *, path: str = "", source: str | None = None) -> Any:
        try:
            return self.cattrs.structure(data, tp)
        except (ClassValidationError, IterableValidationError) as exc:
            problems = transform_error(exc, path="$", format_exception=_format_exception)
            raise RecipeError([_tidy(p, path) for p in problems], source) from None
        except (TypeError, ValueError, KeyError) as exc:
            raise RecipeError([f"{_format_exception(exc, tp)} @ {path or '(top level)'}"], source) from None

    def unstructure(self, obj: Any, tp: Any = None) -> Any:
        return self.cattrs.unstructure(obj, tp) if tp is not None else self.cattrs.unstructure(obj)


def _tidy(problem: str, prefix: str) -> str:
    """``'msg @ $.a.b'`` -> ``'msg @ prefix.a.b'``; ``'seed must be .. @ $.train'`` -> ``'.. @ train.seed'``."""
    msg, sep, where = problem.rpartition(" @ ")
    if not sep:
        return problem
    field = msg.split(" ", 1)[0] if msg.split(" ", 1)[-1].startswith("must be ") else ""
    where = ".".join(filter(None, (where.removeprefix("$").removeprefix("."), field)))
    if prefix:
        where = f"{prefix}.{where}" if where else prefix
    return f"{msg} @ {where or '(top level)'}"
