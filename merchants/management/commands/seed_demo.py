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
PARTNERS = [
    ("Pearl River Payments", Partner.Kind.ISO, None),
    ("Kowloon Merchant Services", Partner.Kind.AGENT, "Pearl River Payments"),
    ("Lion City Resellers", Partner.Kind.RESELLER, None),
]


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
            partners[name] = Partner.objects.get_or_create(
                name=name, defaults={"kind": kind, "parent": partners.get(parent)}
            )[0]
        partner_list = [*partners.values(), None, None]
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
                risk_level=rng.choice(["low"] * 6 + ["medium"] * 3 + ["high"]),
                owner=owner,
                team=team,
                partner=rng.choice(partner_list),
                tags=rng.sample(
                    ["retail", "online", "pos", "priority", "chain", "qr"], k=rng.randint(0, 2)
                ),
            )
            target = rng.choice(statuses)
            if target != Merchant.Status.LEAD:
                self._advance(merchant, target, users["onboarding1"], i)
        return count

    def _advance(self, merchant: Merchant, target: str, actor: User, i: int) -> None:
        """Walk the merchant along its allowed moves to ``target`` (demo only)."""
        services.merchant_update(merchant=merchant, actor=actor, status=Merchant.Status.ONBOARDING)
        if target == Merchant.Status.ONBOARDING:
            return
        if target in (Merchant.Status.ACTIVE, Merchant.Status.SUSPENDED):
            # MIDs are issued by onboarding approval; the demo stands in for it.
            merchant.mid = f"M{merchant.country.code}{100000 + i:06d}"
            audit.stamp(merchant, actor=actor, reason="demo: onboarding approved")
            merchant.save(update_fields=["mid", "updated_at"])
            services.merchant_update(merchant=merchant, actor=actor, status=Merchant.Status.ACTIVE)
        if target != Merchant.Status.ACTIVE:
            services.merchant_update(merchant=merchant, actor=actor, status=target)
