"""Demo data: one user per role and 200 Hong Kong / Southeast Asia merchants.

Safe to run again: users and teams are created once, merchants only while the
database has none.
"""

import random
from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from core import audit
from core.models import Team, User
from core.roles import ADMIN, COMPLIANCE, FINANCE, ONBOARDING, RISK, SALES
from core.services import system_user
from merchants import services
from merchants.models import Merchant, Partner

DEMO_PASSWORD = "PayCRM-demo-2026"  # noqa: S105  printed for the demo on purpose

USERS = [
    ("sales1", "Mandy", "Chan", SALES, "Hong Kong Sales"),
    ("sales2", "Wei Jie", "Tan", SALES, "Southeast Asia Sales"),
    ("onboarding1", "Kelvin", "Lau", ONBOARDING, None),
    ("compliance1", "Priya", "Nair", COMPLIANCE, None),
    ("risk1", "Anan", "Srisuk", RISK, None),
    ("finance1", "Grace", "Wong", FINANCE, None),
    ("finance2", "Marco", "Santos", FINANCE, None),
    ("finance3", "Aisha", "Rahman", FINANCE, None),
    ("admin1", "Olivia", "Ho", ADMIN, None),
]

# country, currency, registration number pattern, cities
COUNTRIES = [
    ("HK", "HKD", "{d8}", ["Central", "Mong Kok", "Causeway Bay", "Kwun Tong", "Tsim Sha Tsui"]),
    ("SG", "SGD", "20{d2}{d5}{L}", ["Orchard", "Tampines", "Jurong", "Bugis"]),
    ("MY", "MYR", "20{d2}01{d6}", ["Kuala Lumpur", "Penang", "Johor Bahru"]),
    ("TH", "THB", "0105{d9}", ["Bangkok", "Chiang Mai", "Phuket"]),
    ("ID", "IDR", "AHU-{d7}.AH.01.01", ["Jakarta", "Surabaya", "Bandung"]),
    ("PH", "PHP", "CS20{d2}{d5}", ["Makati", "Cebu", "Quezon City"]),
    ("VN", "VND", "03{d8}", ["Saigon", "Hanoi", "Da Nang"]),
]
# MCC and the words that make a plausible name for it
TRADES = [
    ("5812", ["Noodle House", "Dim Sum Kitchen", "Cha Chaan Teng", "Bistro", "Hawker Kitchen"]),
    ("5814", ["Bubble Tea", "Bakery Cafe", "Coffee Roasters", "Egg Tart Bakery"]),
    ("5411", ["Fresh Mart", "Grocers", "Wet Market Supplies", "Minimart"]),
    ("5691", ["Apparel", "Fashion House", "Streetwear", "Tailors"]),
    ("5732", ["Electronics", "Mobile Centre", "Digital Store"]),
    ("5912", ["Pharmacy", "Health Store", "Herbal Medicine"]),
    ("7011", ["Boutique Hotel", "Guesthouse", "Serviced Apartments"]),
    ("4722", ["Travel", "Tours", "Holidays"]),
    ("5944", ["Jewellery", "Goldsmiths", "Watch Gallery"]),
    ("7230", ["Beauty Salon", "Hair Studio", "Nail Bar"]),
    ("8299", ["Learning Centre", "Tutoring", "Language School"]),
    ("5999", ["Lifestyle Store", "Gift Shop", "Homeware"]),
]
PREFIXES = [
    "Golden",
    "Lucky",
    "Harbour",
    "Jade",
    "Dragon",
    "Lotus",
    "Pearl",
    "Orchid",
    "Sunrise",
    "Bamboo",
    "Phoenix",
    "Lion City",
    "Silk Road",
    "Red Lantern",
    "Emerald",
    "Kowloon",
    "Victoria",
    "Merlion",
    "Mekong",
    "Borneo",
    "Coral",
    "Monsoon",
    "Teak",
    "Saffron",
]
SUFFIXES = {
    "HK": "Limited",
    "SG": "Pte. Ltd.",
    "MY": "Sdn. Bhd.",
    "TH": "Co., Ltd.",
    "ID": "PT",
    "PH": "Inc.",
    "VN": "Company Limited",
}
# master ISO → agents → sub-agents (three levels)
PARTNERS = [
    ("Pearl River Payments", Partner.Kind.ISO, None),
    ("Kowloon Merchant Services", Partner.Kind.AGENT, "Pearl River Payments"),
    ("Harbour POS Agents", Partner.Kind.AGENT, "Pearl River Payments"),
    ("Mong Kok Street Sales", Partner.Kind.AGENT, "Kowloon Merchant Services"),
    ("Lion City Resellers", Partner.Kind.RESELLER, None),
    ("Straits Digital Agents", Partner.Kind.AGENT, "Lion City Resellers"),
]
CONTACT_NAMES = [
    "Ada Wong",
    "Kenneth Lee",
    "Siti Rahman",
    "Nguyen Van An",
    "Maria Santos",
    "Chen Jia Hui",
    "Arjun Mehta",
    "Lim Wei Ling",
    "Somchai Boonsri",
    "Grace Ho",
    "Daniel Tan",
    "Ayu Lestari",
]
HK_BANKS = [
    ("HSBC", "004", "HSBCHKHHHKH"),
    ("Bank of China (HK)", "012", "BKCHHKHHXXX"),
    ("Hang Seng Bank", "024", "HASEHKHHXXX"),
    ("Standard Chartered HK", "003", "SCBLHKHHXXX"),
]
# A tiny valid PDF for demo documents.
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _domain(merchant: Merchant) -> str:
    return f"{merchant.trading_name.lower().replace(' ', '')}.example"


def _registration(pattern: str, rng: random.Random) -> str:
    out = pattern
    for token, digits in (
        ("{d2}", 2),
        ("{d5}", 5),
        ("{d6}", 6),
        ("{d7}", 7),
        ("{d8}", 8),
        ("{d9}", 9),
    ):
        while token in out:
            out = out.replace(token, "".join(rng.choice("0123456789") for _ in range(digits)), 1)
    return out.replace("{L}", rng.choice("ABCDEFGHJKMNRWZ"))


class Command(BaseCommand):
    help = "Create demo users (one per role) and 200 merchants when the database has none."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchants", type=int, default=200)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, merchants: int, seed: int, **options) -> None:
        actor = system_user()
        with audit.acting_as(actor, origin="command seed_demo", reason="demo data"):
            users = self._users()
            created = self._merchants(users, count=merchants, rng=random.Random(seed))
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} merchants added)."))
        self.stdout.write(f"Sign in at http://127.0.0.1:8000/ with password {DEMO_PASSWORD!r} as:")
        for username, first, last, role, _team in USERS:
            self.stdout.write(f"  {username:<12} {role:<11} {first} {last}")
        self.stdout.write("On first sign-in each user enrols an authenticator app (TOTP).")

    @transaction.atomic
    def _users(self) -> dict[str, User]:
        users = {}
        for username, first, last, role, team_name in USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(
                    username=username,
                    first_name=first,
                    last_name=last,
                    email=f"{username}@paycrm.example",
                    is_staff=role == ADMIN,
                )
                user.set_password(DEMO_PASSWORD)
                user.save()
                user.groups.add(Group.objects.get(name=role))
            if team_name:
                group, _ = Group.objects.get_or_create(name=f"team: {team_name}")
                team, _ = Team.objects.get_or_create(
                    name=team_name, defaults={"group": group, "manager": None}
                )
                user.groups.add(team.group)
            users[username] = user
        return users

    @transaction.atomic
    def _merchants(self, users: dict[str, User], *, count: int, rng: random.Random) -> int:
        if Merchant.objects.exists():
            return 0
        partners = {}
        for name, kind, parent in PARTNERS:
            partners[name] = Partner.objects.filter(name=name).first() or services.partner_create(
                actor=users["admin1"], name=name, kind=kind, parent=partners.get(parent)
            )
        partner_list = [*partners.values(), None, None]
        shared_account_number = None
        sales = [users["sales1"], users["sales2"]]
        teams = {t.group_id: t for t in Team.objects.all()}
        statuses = (
            [Merchant.Status.LEAD] * 5
            + [Merchant.Status.ONBOARDING] * 3
            + [Merchant.Status.ACTIVE] * 6
            + [Merchant.Status.SUSPENDED, Merchant.Status.OFFBOARDED]
        )
        used_names: set[str] = set()
        for i in range(count):
            owner = sales[i % 2]
            # sales1 sells in Hong Kong, sales2 across Southeast Asia
            country, currency, pattern, _cities = (
                COUNTRIES[0] if owner.username == "sales1" else rng.choice(COUNTRIES[1:])
            )
            mcc, words = rng.choice(TRADES)
            trade = rng.choice(words)
            base = f"{rng.choice(PREFIXES)} {trade}"
            while base in used_names:
                base = f"{rng.choice(PREFIXES)} {rng.choice(PREFIXES)} {trade}"
            used_names.add(base)
            legal = f"PT {base}" if country == "ID" else f"{base} {SUFFIXES[country]}"
            team = next((teams[g.pk] for g in owner.groups.all() if g.pk in teams), None)
            volume = Decimal(rng.randrange(20, 4000) * 1000)
            merchant = services.merchant_create(
                actor=users["admin1"] if i % 10 == 0 else owner,
                legal_name=legal,
                trading_name=base,
                registration_number=_registration(pattern, rng),
                country=country,
                business_type=rng.choice(
                    [Merchant.BusinessType.PRIVATE_COMPANY] * 4
                    + [Merchant.BusinessType.SOLE_PROPRIETOR, Merchant.BusinessType.PARTNERSHIP]
                ),
                mcc=mcc,
                website=f"https://www.{base.lower().replace(' ', '')}.example",
                expected_monthly_volume=volume,
                volume_currency=currency,
                owner=owner,
                team=team,
                partner=rng.choice(partner_list),
                tags=rng.sample(
                    ["retail", "online", "pos", "priority", "chain", "qr"], k=rng.randint(0, 2)
                ),
            )
            risk_level = rng.choice(["low"] * 6 + ["medium"] * 3 + ["high"])
            if risk_level != merchant.risk_level:
                # Risk rates merchants, as in the app.
                merchant = services.merchant_set_risk_level(
                    merchant=merchant, actor=users["risk1"], risk_level=risk_level,
                    reason="demo: initial rating",
                )  # fmt: skip
            target = rng.choice(statuses)
            if target != Merchant.Status.LEAD:
                self._advance(merchant, target, users, i)
            shared_account_number = self._records(
                merchant, owner, users, rng, i, shared_account_number
            )
        return count

    def _records(self, merchant, owner, users, rng, i, shared_number):
        """Contacts, owners, a bank account, documents, activities and pricing."""
        from datetime import timedelta

        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.utils import timezone

        today = timezone.localdate()
        merchant.refresh_from_db(fields=["status"])
        for n in range(rng.randint(1, 2)):
            name = rng.choice(CONTACT_NAMES)
            services.contact_create(
                actor=owner,
                merchant=merchant,
                name=name,
                title=rng.choice(["Director", "Finance Manager", "Owner", "Operations"]),
                email=f"{name.split()[0].lower()}.{merchant.pk}@{_domain(merchant)}",
                phone=f"+852 {rng.randint(5000, 9999)} {rng.randint(1000, 9999)}",
                is_primary=n == 0,
            )
        shares = [Decimal(100)] if rng.random() < 0.5 else [Decimal(60), Decimal(40)]
        for share in shares:
            services.owner_create(
                actor=owner,
                merchant=merchant,
                full_name=rng.choice(CONTACT_NAMES),
                nationality=merchant.country.code,
                ownership_percent=share,
                id_number=f"{rng.choice('ABCDEKMPRZ')}{rng.randint(1000000, 9999999)}",
                is_pep=rng.random() < 0.03,
            )
        if merchant.country.code == "HK":
            bank, code, swift = rng.choice(HK_BANKS)
            number = f"{code}{rng.randint(100, 999)}{rng.randint(100000000, 999999999)}"
        else:
            bank, swift = "Regional Bank", ""
            number = f"{rng.randint(10**9, 10**10 - 1)}"
        if i in (0, 2):  # two of sales1's merchants share one account, for the warning
            shared_number = shared_number or number
            number = shared_number
        services.bank_account_create(
            actor=owner,
            merchant=merchant,
            account_holder=merchant.legal_name,
            bank_name=bank,
            swift_code=swift,
            country=merchant.country.code,
            currency=merchant.volume_currency,
            account_number=number,
        )
        if merchant.status != Merchant.Status.LEAD:
            for doc_type in ("business_registration", "owner_id"):
                services.document_upload(
                    actor=owner,
                    merchant=merchant,
                    doc_type=doc_type,
                    upload=SimpleUploadedFile(f"{doc_type}.pdf", DEMO_PDF),
                    expires_on=today + timedelta(days=rng.randint(5, 400)),
                )
        for _n in range(rng.randint(1, 3)):
            kind = rng.choice(["call", "email", "meeting", "note", "chat"])
            services.activity_log(
                actor=owner,
                merchant=merchant,
                kind=kind,
                subject=rng.choice(
                    [
                        "Intro call",
                        "Sent pricing proposal",
                        "Site visit",
                        "Follow-up on documents",
                        "Asked about Alipay+ and FPS",
                        "Quarterly review",
                    ]
                ),
                occurred_at=timezone.now()
                - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 8)),
            )
        if rng.random() < 0.5:
            services.activity_log(
                actor=owner,
                merchant=merchant,
                kind="task",
                subject=rng.choice(
                    ["Collect signed contract", "Chase missing documents", "Call back"]
                ),
                due_on=today + timedelta(days=rng.randint(-5, 14)),
            )
        if merchant.status in (
            Merchant.Status.ACTIVE,
            Merchant.Status.SUSPENDED,
            Merchant.Status.ONBOARDING,
        ):
            services.pricing_plan_create(
                actor=owner,
                merchant=merchant,
                name="Standard 2026",
                currency=merchant.volume_currency,
                rates=[
                    {
                        "method": "card_domestic",
                        "percent": Decimal("1.70"),
                        "fixed_fee": Decimal("1.00"),
                    },
                    {
                        "method": "card_international",
                        "percent": Decimal("2.90"),
                        "fixed_fee": Decimal("2.00"),
                    },
                    {"method": "alipay", "percent": Decimal("1.80"), "fixed_fee": Decimal("0")},
                    {"method": "wechat_pay", "percent": Decimal("1.80"), "fixed_fee": Decimal("0")},
                    {"method": "fps", "percent": Decimal("0.60"), "fixed_fee": Decimal("0")},
                ],
            )
            services.contract_create(
                actor=owner,
                merchant=merchant,
                starts_on=today - timedelta(days=rng.randint(0, 300)),
            )
        return shared_number

    def _advance(self, merchant: Merchant, target: str, users: dict, i: int) -> None:
        """Walk the merchant along its allowed moves to ``target`` (demo only),
        each by the role that may make it."""
        actor = users["onboarding1"]
        merchant = services.merchant_change_status(
            merchant=merchant, actor=actor, status=Merchant.Status.ONBOARDING, reason=""
        )
        if target == Merchant.Status.ONBOARDING:
            return
        # The demo stands in for onboarding approval, which issues the MID.
        merchant = services.merchant_activate(
            merchant=merchant, actor=actor, reason="demo: onboarding approved"
        )
        if target != Merchant.Status.ACTIVE:
            services.merchant_change_status(
                merchant=merchant, actor=users["risk1"], status=target, reason="demo"
            )
