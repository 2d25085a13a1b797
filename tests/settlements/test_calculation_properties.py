"""Property-based proof that revenue share never loses or invents a minor unit.

For random partner trees, tiers (whole and graduated), rounding modes, bases,
currencies with 0, 2 and 3 minor digits, and merchants whose figures include
refunds and chargebacks (negative amounts), every merchant's partner shares
plus the platform's retained amount equal its rounded basis exactly.
"""

import decimal
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core import money
from settlements import calculation

CURRENCIES = ["JPY", "HKD", "KWD"]  # 0, 2 and 3 minor digits


def amounts(places: int = 6, limit: int = 10**7):
    """Unrounded amounts (FX-converted sums carry many decimals), either sign."""
    return st.integers(min_value=-limit * 10**places, max_value=limit * 10**places).map(
        lambda n: Decimal(n).scaleb(-places)
    )


@st.composite
def tiers(draw):
    starts = sorted(draw(st.sets(st.integers(1, 5_000_000), max_size=3)))
    rates = draw(
        st.lists(
            st.integers(0, 10_000 * 10**4).map(lambda n: Decimal(n).scaleb(-4)),
            min_size=len(starts) + 1,
            max_size=len(starts) + 1,
        )
    )
    return tuple(zip([Decimal(0), *map(Decimal, starts)], rates, strict=True))


@st.composite
def worlds(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    basis = draw(st.sampled_from(["fee", "net", "volume"]))
    n_partners = draw(st.integers(1, 7))
    # Parent index lower than the child's: a forest of any depth, no cycles.
    parents = {
        pid: (draw(st.one_of(st.none(), st.integers(1, pid - 1))) if pid > 1 else None)
        for pid in range(1, n_partners + 1)
    }
    terms = {}
    for pid in parents:
        if draw(st.booleans()) or pid == 1:
            terms[pid] = calculation.Terms(
                agreement_id=pid,
                basis=basis,
                tier_mode=draw(st.sampled_from(["whole", "graduated"])),
                tiers=draw(tiers()),
                rounding=draw(st.sampled_from([ROUND_HALF_UP, ROUND_HALF_EVEN, ROUND_DOWN])),
            )
    merchants = [
        calculation.MerchantFigures(
            merchant_id=mid,
            partner_id=draw(st.one_of(st.none(), st.integers(1, n_partners))),
            transaction_count=draw(st.integers(1, 500)),
            volume=draw(amounts()),
            fee=draw(amounts()),
            cost=draw(amounts()),
        )
        for mid in range(1, draw(st.integers(1, 12)) + 1)
    ]
    return currency, parents, terms, merchants


def _is_minor_unit(amount: Decimal, currency: str) -> bool:
    return amount == money.quantize(amount, currency)


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_shares_plus_retained_equal_the_basis_exactly(world):
    currency, parents, terms, merchants = world
    result = calculation.calculate(
        currency=currency, merchants=merchants, parents=parents, terms=terms
    )
    for merchant in result.merchants:
        assert merchant.shares + merchant.retained == merchant.basis
        assert _is_minor_unit(merchant.basis, currency)
        assert _is_minor_unit(merchant.retained, currency)
        for line in merchant.lines:
            assert _is_minor_unit(line.share, currency)
            assert line.rate_bps >= 0
            # Rounded once: within one minor unit of the exact share.
            with decimal.localcontext() as ctx:
                ctx.prec = calculation.PRECISION
                exact = merchant.figures.basis(merchant.basis_kind) * line.rate_bps / 10000
            assert abs(line.share - exact) < Decimal(1).scaleb(-money.minor_units(currency))
    assert result.total_shares + result.total_retained == result.total_basis
    by_partner = result.lines_by_partner()
    assert sum((line.share for lines in by_partner.values() for line in lines), Decimal(0)) == (
        result.total_shares
    )


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_each_partner_is_paid_its_rate_or_its_spread_never_below_zero(world):
    currency, parents, terms, merchants = world
    result = calculation.calculate(
        currency=currency, merchants=merchants, parents=parents, terms=terms
    )
    for merchant in result.merchants:
        below = None
        for line in merchant.lines:
            own = result.partner_rate[line.partner_id].rate_bps
            if below is None:
                assert line.role == "referrer"
                assert line.rate_bps == own
            else:
                with decimal.localcontext() as ctx:
                    ctx.prec = calculation.PRECISION
                    assert line.rate_bps == max(own - below, 0)
                assert line.negative_spread == (own < below)
            below = own


@settings(max_examples=300, deadline=None)
@given(tiers(), st.sampled_from(["whole", "graduated"]), amounts(places=2))
def test_the_rate_lies_between_the_lowest_and_highest_band(tier_list, mode, volume):
    terms = calculation.Terms(agreement_id=1, basis="fee", tier_mode=mode, tiers=tier_list)
    rate = calculation.tier_rate(terms, volume)
    rates = [r for _s, r in tier_list]
    assert min(rates) <= rate.rate_bps <= max(rates)
    if mode == "whole" and volume > 0:
        assert rate.rate_bps == [r for s, r in tier_list if s <= volume][-1]


@settings(max_examples=200, deadline=None)
@given(
    tiers(),
    st.sampled_from(["whole", "graduated"]),
    amounts(places=2).map(lambda v: -abs(v)),
)
def test_a_period_volume_of_zero_or_below_stays_in_the_first_band(tier_list, mode, volume):
    """A month of refunds larger than its payments earns the first band's
    rate, in both modes (README: how a share is calculated)."""
    terms = calculation.Terms(agreement_id=1, basis="fee", tier_mode=mode, tiers=tier_list)
    rate = calculation.tier_rate(terms, volume)
    assert (rate.rate_bps, rate.tier_from) == (tier_list[0][1], Decimal(0))


@settings(max_examples=200, deadline=None)
@given(
    amounts(places=3, limit=10**6),
    amounts(places=3, limit=10**6),
    st.integers(0, 10**6).map(lambda n: Decimal(n).scaleb(-2)),
)
def test_payout_pays_or_carries_the_whole_total(lines_total, carried_in, minimum):
    out = calculation.payout(
        lines_total=lines_total, adjustments=Decimal(0), carried_in=carried_in, minimum=minimum
    )
    assert out.payable + out.carried_out == out.total == lines_total + carried_in
    assert out.payable >= 0
    assert out.payable == 0 or out.carried_out == 0
