"""Which price fields each order type requires or forbids: one table for schema and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

#: The price fields an order type may use.
PRICE_FIELDS: Final = (
    "limit_price",
    "stop_price",
    "trailing_amount",
    "trailing_percent",
    "limit_offset",
)
TRAILS: Final = ("trailing_amount", "trailing_percent")


@dataclass(frozen=True, slots=True)
class TypeRule:
    """The fields of one order type: required, one-of (exactly one), optional (rest forbidden)."""

    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    #: Time-in-force values the type accepts (``None``: all).
    tifs: tuple[str, ...] | None = None
    meaning: str = ""

    def forbidden(self) -> tuple[str, ...]:
        """Price fields the type does not use."""
        used = {*self.required, *self.one_of, *self.optional}
        return tuple(f for f in PRICE_FIELDS if f not in used)


RULES: Final[dict[str, TypeRule]] = {
    "MKT": TypeRule(meaning="market"),
    "LMT": TypeRule(required=("limit_price",), meaning="limit"),
    "STP": TypeRule(required=("stop_price",), meaning="market once stop_price trades"),
    "STP_LMT": TypeRule(
        required=("stop_price", "limit_price"), meaning="limit once stop_price trades"
    ),
    "TRAIL": TypeRule(one_of=TRAILS, optional=("stop_price",), meaning="stop trailing the market"),
    "TRAIL_LIMIT": TypeRule(
        required=("limit_offset",),
        one_of=TRAILS,
        optional=("stop_price",),
        meaning="trailing stop, then limit at stop ∓ limit_offset",
    ),
    "MIT": TypeRule(required=("stop_price",), meaning="market if touched (stop_price)"),
    "LIT": TypeRule(
        required=("stop_price", "limit_price"), meaning="limit if touched (stop_price)"
    ),
    "MOC": TypeRule(tifs=("DAY",), meaning="market on close"),
    "LOC": TypeRule(required=("limit_price",), tifs=("DAY",), meaning="limit on close"),
}
#: Order types that may open a bracket (the children need a working parent to attach to).
BRACKET_PARENTS: Final = frozenset({"MKT", "LMT", "STP", "STP_LMT", "MIT", "LIT"})
#: OPG (at the open) exists only for market and limit orders (IB's MOO / LOO).
OPG_TYPES: Final = frozenset({"MKT", "LMT"})


def field_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, message)`` for every field the order type needs or does not accept."""
    order_type = values.get("order_type") or "LMT"
    rule = RULES[order_type]
    problems: list[tuple[str, str]] = []
    for name in rule.required:
        if values.get(name) is None:
            problems.append((name, f"{name} is required for a {order_type} order"))
    if rule.one_of:
        given = [n for n in rule.one_of if values.get(n) is not None]
        if len(given) != 1:
            problems.append(
                (rule.one_of[0], f"a {order_type} order needs exactly one of trailing_amount, "
                 "trailing_percent"),
            )  # fmt: skip
    for name in rule.forbidden():
        if values.get(name) is not None:
            problems.append((name, f"{name} is not used by a {order_type} order; omit it"))
    tif = values.get("tif") or "DAY"
    if rule.tifs is not None and tif not in rule.tifs:
        problems.append(("tif", f"a {order_type} order takes tif {'/'.join(rule.tifs)}"))
    if tif == "OPG" and order_type not in OPG_TYPES:
        problems.append(("tif", "tif OPG (at the open) is only for MKT or LMT orders"))
    if tif == "GTD" and values.get("good_till") is None:
        problems.append(("good_till", "good_till is required with tif GTD"))
    if tif != "GTD" and values.get("good_till") is not None:
        problems.append(("good_till", "good_till is only used with tif GTD"))
    return problems


def schema_variants(*, default_type: str | None = "LMT") -> list[dict[str, Any]]:
    """The discriminated union over ``order_type`` as compact JSON-schema branches.

    Each branch pins ``order_type`` (types with the same fields share a branch) and lists the
    price fields it requires; a field the types do not use is ``false`` (must be absent).
    ``default_type`` matches when order_type is omitted.
    """
    groups: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    for name, rule in RULES.items():
        groups.setdefault((rule.required, rule.one_of, rule.optional), []).append(name)
    variants = []
    for (required_fields, one_of, _), names in groups.items():
        rule = RULES[names[0]]
        pinned = {"const": names[0]} if len(names) == 1 else {"enum": names}
        branch: dict[str, Any] = {
            "properties": {"order_type": pinned, **dict.fromkeys(rule.forbidden(), False)}
        }
        required = list(required_fields)
        if default_type not in names:
            required.insert(0, "order_type")
        if required:
            branch["required"] = required
        if one_of:
            branch["oneOf"] = [{"required": [n]} for n in one_of]
        variants.append(branch)
    return variants
