"""FX rates: the services (one rate, all-or-nothing CSV, inverse lookups) and the page."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.exceptions import DomainError
from settlements.models import FxRate
from settlements.services import fx
from tests.factories.settlements import FxRateFactory

pytestmark = pytest.mark.django_db

GOOD_CSV = "date,base,quote,rate\n2026-10-15,USD,HKD,7.8\n2026-10-16,usd,hkd,7.81\n"
BAD_CSV = (
    "date,base,quote,rate\n"
    "2026-10-15,USD,HKD,7.8\n"  # line 2: fine
    "15/10/2026,USD,HKD,7.8\n"  # line 3: date
    "2026-10-16,USD,HKD,-1\n"  # line 4: rate
    "2026-10-16,XYZ,HKD,7.8\n"  # line 5: base
    "2026-10-16,HKD,HKD,1\n"  # line 6: quote
)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# ---------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------


def test_rate_set_enters_and_then_replaces_the_days_rate(finance1):
    fx.fx_rate_set(
        actor=finance1, rate_on=date(2026, 10, 15), base="usd", quote="hkd", rate=Decimal("7.8")
    )
    again = fx.fx_rate_set(
        actor=finance1, rate_on=date(2026, 10, 15), base="USD", quote="HKD", rate=Decimal("7.79")
    )
    assert FxRate.objects.count() == 1
    assert again.rate == Decimal("7.79")
    assert (again.base, again.quote) == ("USD", "HKD")
    assert again.history.first().history_change_reason == "rate replaced"


def test_rate_set_refuses_the_same_currency_on_both_sides(finance1):
    with pytest.raises(ValidationError) as exc:
        fx.fx_rate_set(
            actor=finance1, rate_on=date(2026, 10, 15), base="HKD", quote="HKD", rate=Decimal("1")
        )
    assert "quote" in exc.value.message_dict
    assert not FxRate.objects.exists()


def test_rate_set_needs_the_permission(sales1):
    with pytest.raises(PermissionDenied):
        fx.fx_rate_set(
            actor=sales1, rate_on=date(2026, 10, 15), base="USD", quote="HKD", rate=Decimal("7.8")
        )


def test_import_writes_every_row_of_a_good_file(finance1):
    report = fx.fx_rates_import(actor=finance1, text=GOOD_CSV)
    assert (report.rows, report.written, report.errors) == (2, 2, [])
    assert list(FxRate.objects.order_by("rate_on").values_list("base", "quote", "rate")) == [
        ("USD", "HKD", Decimal("7.8")),
        ("USD", "HKD", Decimal("7.81")),
    ]


def test_import_with_bad_rows_writes_nothing_and_reports_line_and_column(finance1):
    FxRateFactory(rate_on=date(2026, 10, 15), rate=Decimal("7.7"))
    report = fx.fx_rates_import(actor=finance1, text=BAD_CSV)
    assert report.written == 0
    assert report.rows == 5
    assert [(line, column) for line, column, _message in report.errors] == [
        (3, "date"),
        (4, "rate"),
        (5, "base"),
        (6, "quote"),
    ]
    assert report.errors[0][2] == "Enter the date as YYYY-MM-DD."
    # the good row on line 2 was not written either: the old rate stands
    assert FxRate.objects.get().rate == Decimal("7.7")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("day,base,quote,rate\n2026-10-15,USD,HKD,7.8\n", r"lacks the column\(s\): date"),
        ("date,base,quote,rate\n", "has a header but no rows"),
    ],
)
def test_import_refuses_a_file_without_the_columns_or_rows(finance1, text, message):
    with pytest.raises(DomainError, match=message):
        fx.fx_rates_import(actor=finance1, text=text)
    assert not FxRate.objects.exists()


def test_conversion_uses_the_inverse_of_a_rate_entered_the_other_way_round():
    FxRateFactory(rate_on=date(2026, 10, 15), base="HKD", quote="USD", rate=Decimal("0.125"))
    table = fx.conversion_table(quote="HKD", needs={("USD", date(2026, 10, 15))})
    assert table == {("USD", date(2026, 10, 15)): Decimal(8)}


def test_conversion_prefers_the_direct_rate_over_the_inverse():
    day = date(2026, 10, 15)
    FxRateFactory(rate_on=day, base="HKD", quote="USD", rate=Decimal("0.125"))
    FxRateFactory(rate_on=day, base="USD", quote="HKD", rate=Decimal("7.8"))
    assert fx.conversion_table(quote="HKD", needs={("USD", day)}) == {("USD", day): Decimal("7.8")}


def test_conversion_names_every_missing_rate():
    with pytest.raises(fx.MissingRates) as exc:
        fx.conversion_table(
            quote="HKD",
            needs={("USD", date(2026, 10, 15)), ("EUR", date(2026, 10, 16)), ("HKD", date.min)},
        )
    assert exc.value.missing == [
        ("USD", "HKD", date(2026, 10, 15)),
        ("EUR", "HKD", date(2026, 10, 16)),
    ]
    assert "USD to HKD on 2026-10-15" in exc.value.message


# ---------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------


def test_page_lists_rates_with_their_inverse(web, finance1):
    FxRateFactory(rate_on=date(2026, 10, 15), base="USD", quote="HKD", rate=Decimal("8"))
    response = web(finance1).get(reverse("settlements:fx-rates"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "2026-10-15" in html
    assert ">8<" in html
    assert ">0.125<" in html


def test_page_filters_by_currency_and_dates(web, finance1):
    usd = FxRateFactory(rate_on=date(2026, 10, 15), base="USD", quote="HKD")
    eur = FxRateFactory(rate_on=date(2026, 10, 15), base="EUR", quote="HKD")
    late = FxRateFactory(rate_on=date(2026, 11, 2), base="USD", quote="HKD")
    client = web(finance1)

    def shown(**params):
        return {r.pk for r in client.get(reverse("settlements:fx-rates"), params).context["page"]}

    assert shown(currency="EUR") == {eur.pk}
    assert shown(currency="HKD") == {usd.pk, eur.pk, late.pk}  # as base or quote
    assert shown(date_from="2026-11-01") == {late.pk}
    assert shown(date_to="2026-10-31", currency="USD") == {usd.pk}


def test_page_is_paginated_by_fifty(web, finance1):
    for n in range(51):
        FxRateFactory(rate_on=date(2026, 1, 1) + timedelta(days=n))
    client = web(finance1)
    assert len(client.get(reverse("settlements:fx-rates")).context["page"]) == 50
    assert len(client.get(reverse("settlements:fx-rates"), {"page": 2}).context["page"]) == 1


def test_rate_is_entered_through_the_page(web, finance1):
    response = web(finance1).post(
        reverse("settlements:fx-rate-set"),
        {"rate_on": "2026-10-15", "base": "USD", "quote": "HKD", "rate": "7.80"},
    )
    assert response.status_code == 302
    assert "Saved: on 2026-10-15, 1 USD = 7.8 HKD." in _messages(response)
    assert FxRate.objects.get().rate == Decimal("7.8")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"base": "HKD", "quote": "HKD", "rate": "1"}, "quote", "other than the base currency"),
        ({"base": "USD", "quote": "HKD", "rate": "0"}, "rate", "greater than or equal to"),
        ({"base": "USD", "quote": "HKD", "rate": "x"}, "rate", "Enter a number."),
        ({"base": "ZZZ", "quote": "HKD", "rate": "1"}, "base", "not one of the available"),
    ],
)
def test_rate_errors_land_on_their_fields(web, finance1, data, field, message):
    response = web(finance1).post(
        reverse("settlements:fx-rate-set"), {"rate_on": "2026-10-15", **data}
    )
    assert response.status_code == 400
    errors = response.context["rate_form"].errors
    assert any(message in e for e in errors[field]), errors
    assert not FxRate.objects.exists()


def _upload(text: str | bytes, name: str = "rates.csv") -> SimpleUploadedFile:
    content = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_csv_is_imported_through_the_page(web, finance1):
    response = web(finance1).post(
        reverse("settlements:fx-rate-import"), {"file": _upload("\ufeff" + GOOD_CSV)}
    )
    assert response.status_code == 302
    assert "2 rates imported." in _messages(response)
    assert FxRate.objects.count() == 2


def test_csv_with_bad_rows_shows_the_report_and_writes_nothing(web, finance1):
    response = web(finance1).post(reverse("settlements:fx-rate-import"), {"file": _upload(BAD_CSV)})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="fx-import-report"' in html
    assert "Nothing was imported: 4 problems in 5 row(s)." in html
    assert "<td>3</td><td><code>date</code></td><td>Enter the date as YYYY-MM-DD.</td>" in html
    assert "<td>6</td><td><code>quote</code></td>" in html
    assert not FxRate.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("day,base,quote,rate\n2026-10-15,USD,HKD,7.8\n", "lacks the column(s): date"),
        ("2026-10-15,USD,HKD,7.8\n".encode("utf-16"), "not UTF-8"),
    ],
)
def test_unreadable_csv_gets_a_message_on_the_file_field(web, finance1, content, message):
    response = web(finance1).post(reverse("settlements:fx-rate-import"), {"file": _upload(content)})
    assert response.status_code == 400
    assert any(message in e for e in response.context["import_form"].errors["file"])
    assert not FxRate.objects.exists()


def test_compliance_reads_rates_but_cannot_enter_them(web, compliance1):
    FxRateFactory()
    client = web(compliance1)
    page = client.get(reverse("settlements:fx-rates"))
    assert page.status_code == 200
    assert 'data-testid="fx-rate-form"' not in page.content.decode()
    response = client.post(
        reverse("settlements:fx-rate-set"),
        {"rate_on": "2026-10-16", "base": "USD", "quote": "HKD", "rate": "7.8"},
    )
    assert response.status_code == 403
    assert (
        client.post(reverse("settlements:fx-rate-import"), {"file": _upload(GOOD_CSV)}).status_code
        == 403
    )
    assert FxRate.objects.count() == 1


def test_sales_user_gets_404_on_fx_pages(web, sales1):
    client = web(sales1)
    assert client.get(reverse("settlements:fx-rates")).status_code == 404
    assert client.post(reverse("settlements:fx-rate-set")).status_code == 404
    assert client.post(reverse("settlements:fx-rate-import")).status_code == 404
