"""Fuzzy name screening against the loaded list (rapidfuzz, no hand-rolled scoring).

Names are normalised before matching: case, accents and punctuation dropped,
common corporate suffixes removed, words sorted (so word order does not count).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from onboarding.models import ScreeningEntry

THRESHOLD = 88  # token-sort ratio, 0-100
SUFFIXES = {
    "limited", "ltd", "co", "company", "corp", "corporation", "inc", "incorporated", "llc",
    "plc", "pte", "sdn", "bhd", "pt", "tbk", "holdings", "holding", "group", "gmbh", "sa",
    "ag", "bv", "jsc", "the",
}  # fmt: skip


def normalise(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w and w not in SUFFIXES]
    return " ".join(sorted(words))


@dataclass(frozen=True)
class Match:
    screened: str
    entry_id: int
    listed_name: str
    source: str
    score: float


def screen(names: list[str], *, threshold: int = THRESHOLD) -> list[Match]:
    """Every (name, entry) pair scoring at or above ``threshold``, best first."""
    choices: dict[tuple[int, str], str] = {}
    entries = {}
    for entry in ScreeningEntry.objects.only("pk", "name", "aliases", "source"):
        entries[entry.pk] = entry
        for listed in [entry.name, *entry.aliases]:
            key = normalise(listed)
            if key:
                choices[(entry.pk, listed)] = key
    matches = []
    for name in names:
        query = normalise(name)
        if not query:
            continue
        found = process.extract(
            query, choices, scorer=fuzz.token_sort_ratio, score_cutoff=threshold, limit=None
        )
        best: dict[int, Match] = {}
        for _key, score, (entry_id, listed) in found:
            if entry_id not in best or score > best[entry_id].score:
                best[entry_id] = Match(name, entry_id, listed, entries[entry_id].source, score)
        matches += best.values()
    return sorted(matches, key=lambda m: -m.score)
