"""The revenue-share arithmetic, free of the database so every number can be
checked by hand (and by property-based tests).

Rules (issue 5):
- a partner's volume is the net processed volume of every merchant referred
  by it or by any partner below it, in the run currency;
- its rate comes from the tier that volume reaches: ``whole`` applies that
  tier's rate to everything, ``graduated`` the volume-weighted average of the
  band rates;
- a merchant's basis is the sum of fee, fee - cost, or amount;
- the nearest partner with an agreement earns basis * its rate; each partner
  above it earns basis * max(its rate - its child's rate, 0), and a negative
  spread is flagged. A partner without an agreement in force is passed over;
- full precision throughout; each line is rounded once to the currency's minor
  unit with its agreement's rounding mode. The merchant's basis is rounded
  the same way and the platform keeps basis - shares, so shares plus retained
  equal the basis exactly, merchant by merchant.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core import money

ZERO = Decimal(0)
BPS = Decimal(10000)
# Plenty for products of 20-digit amounts and 10-decimal rates.
PRECISION = 60


@dataclass(frozen=True)
class Terms:
    """An agreement as the calculation needs it."""

    agreement_id: int | None
    basis: str  # fee | net | volume
    tier_mode: str  # whole | graduated
    tiers: tuple[tuple[Decimal, Decimal], ...]  # (from_volume, rate_bps), sorted, first at 0
    rounding: str = decimal.ROUND_HALF_UP
    minimum_payout: Decimal = ZERO


@dataclass(frozen=True)
class MerchantFigures:
    """One merchant's period in the run currency, unrounded."""

    merchant_id: int
    partner_id: int | None
    transaction_count: int
    volume: Decimal
    fee: Decimal
    cost: Decimal

    def basis(self, kind: str) -> Decimal:
        if kind == "fee":
            return self.fee
        if kind == "net":
            return self.fee - self.cost
        if kind == "volume":
            return self.volume
        raise ValueError(f"unknown basis {kind!r}")


@dataclass(frozen=True)
class Rate:
    rate_bps: Decimal
    tier_from: Decimal


@dataclass(frozen=True)
class Line:
    partner_id: int
    merchant_id: int
    role: str  # referrer | spread
    partner_rate_bps: Decimal
    child_rate_bps: Decimal | None
    rate_bps: Decimal
    share: Decimal
    negative_spread: bool


@dataclass
class MerchantResult:
    figures: MerchantFigures
    basis_kind: str
    basis: Decimal  # rounded once
    lines: list[Line] = field(default_factory=list)

    @property
    def shares(self) -> Decimal:
        return sum((line.share for line in self.lines), ZERO)

    @property
    def retained(self) -> Decimal:
        return self.basis - self.shares


@dataclass
class Result:
    currency: str
    partner_volume: dict[int, Decimal]
    partner_rate: dict[int, Rate]
    merchants: list[MerchantResult]

    @property
    def total_basis(self) -> Decimal:
        return sum((m.basis for m in self.merchants), ZERO)

    @property
    def total_shares(self) -> Decimal:
        return sum((m.shares for m in self.merchants), ZERO)

    @property
    def total_retained(self) -> Decimal:
        return sum((m.retained for m in self.merchants), ZERO)

    def lines_by_partner(self) -> dict[int, list[Line]]:
        grouped: dict[int, list[Line]] = {}
        for merchant in self.merchants:
            for line in merchant.lines:
                grouped.setdefault(line.partner_id, []).append(line)
        return grouped


def tier_rate(terms: Terms, volume: Decimal) -> Rate:
    """The rate ``volume`` earns under ``terms`` (see the module rules)."""
    tiers = terms.tiers
    reached = tiers[0]
    for tier in tiers:
        if volume >= tier[0]:
            reached = tier
    if terms.tier_mode == "whole" or volume <= 0:
        # Nothing to weigh when there is no positive volume: the first band applies.
        return Rate(rate_bps=reached[1] if volume > 0 else tiers[0][1], tier_from=reached[0])
    weighted = ZERO
    for n, (start, rate) in enumerate(tiers):
        end = tiers[n + 1][0] if n + 1 < len(tiers) else None
        top = volume if end is None else min(volume, end)
        if top > start:
            weighted += rate * (top - start)
    return Rate(rate_bps=weighted / volume, tier_from=reached[0])


def ancestors(partner_id: int | None, parents: Mapping[int, int | None]) -> list[int]:
    """``partner_id`` and every partner above it, nearest first (cycles cut)."""
    chain: list[int] = []
    while partner_id is not None and partner_id not in chain:
        chain.append(partner_id)
        partner_id = parents.get(partner_id)
    return chain


def calculate(
    *,
    currency: str,
    merchants: Iterable[MerchantFigures],
    parents: Mapping[int, int | None],
    terms: Mapping[int, Terms],
) -> Result:
    """Shares of every partner on every merchant; see the module docstring.

    ``parents`` maps each partner to its parent; ``terms`` holds the agreement
    in force of the partners that have one. Merchants whose referral path has
    no agreement are left out: nobody shares in them.
    """
    merchants = list(merchants)
    with decimal.localcontext() as ctx:
        ctx.prec = PRECISION
        volume: dict[int, Decimal] = {}
        for m in merchants:
            for partner_id in ancestors(m.partner_id, parents):
                volume[partner_id] = volume.get(partner_id, ZERO) + m.volume
        rates = {pid: tier_rate(terms[pid], vol) for pid, vol in volume.items() if pid in terms}
        results = []
        for m in merchants:
            path = [pid for pid in ancestors(m.partner_id, parents) if pid in terms]
            if not path:
                continue
            kinds = {terms[pid].basis for pid in path}
            if len(kinds) > 1:
                raise ValueError(
                    f"merchant {m.merchant_id}: agreements on one path mix bases {sorted(kinds)}"
                )
            kind = kinds.pop()
            exact = m.basis(kind)
            first = terms[path[0]]
            result = MerchantResult(
                figures=m,
                basis_kind=kind,
                basis=money.quantize(exact, currency, first.rounding),
            )
            child_rate: Decimal | None = None
            for pid in path:
                own = rates[pid].rate_bps
                if child_rate is None:
                    rate, role, negative = own, "referrer", False
                else:
                    spread = own - child_rate
                    rate, role, negative = max(spread, ZERO), "spread", spread < 0
                share = money.quantize(exact * rate / BPS, currency, terms[pid].rounding)
                result.lines.append(
                    Line(
                        partner_id=pid,
                        merchant_id=m.merchant_id,
                        role=role,
                        partner_rate_bps=own,
                        child_rate_bps=child_rate,
                        rate_bps=rate,
                        share=share,
                        negative_spread=negative,
                    )
                )
                child_rate = own
            results.append(result)
    return Result(currency=currency, partner_volume=volume, partner_rate=rates, merchants=results)


@dataclass(frozen=True)
class Payout:
    total: Decimal
    payable: Decimal
    carried_out: Decimal


def payout(
    *, lines_total: Decimal, adjustments: Decimal, carried_in: Decimal, minimum: Decimal
) -> Payout:
    """What a statement pays now and what it carries forward.

    A negative total, or one under the agreement's minimum payout, is paid
    nothing and carried forward whole to the partner's next run.
    """
    total = lines_total + adjustments + carried_in
    if total <= 0 or total < minimum:
        return Payout(total=total, payable=ZERO, carried_out=total)
    return Payout(total=total, payable=total, carried_out=ZERO)
