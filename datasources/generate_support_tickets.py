"""Regenerate support_tickets.csv, the demo data: 240 short support tickets labelled with a topic
(billing, shipping, technical) and a sentiment (positive, negative). Deterministic: a fixed seed.

    python datasources/generate_support_tickets.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

ROWS_PER_TOPIC = 80
SUBJECTS = {
    "billing": ["my invoice", "the charge on my card", "my refund", "the monthly fee", "my subscription payment"],
    "shipping": ["my parcel", "the delivery", "the courier", "my package tracking", "the shipment"],
    "technical": ["the app", "the login page", "the mobile sync", "the password reset", "the dashboard"],
}
NEGATIVE = ["is wrong again", "never arrived", "keeps crashing", "is broken and I am angry", "is a disaster"]
POSITIVE = ["was sorted quickly, thank you", "works great now", "arrived early, love it", "was handled perfectly"]
OPENERS = ["Hi,", "Hello team,", "Quick note:", "Hey,", ""]


def tickets(seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for topic, subjects in SUBJECTS.items():
        for _ in range(ROWS_PER_TOPIC):
            sentiment = rng.choice(["positive", "negative"])
            ending = rng.choice(POSITIVE if sentiment == "positive" else NEGATIVE)
            text = f"{rng.choice(OPENERS)} {rng.choice(subjects)} {ending}.".strip()
            rows.append({"text": text, "topic": topic, "sentiment": sentiment})
    rng.shuffle(rows)
    return rows


if __name__ == "__main__":
    target = Path(__file__).with_name("support_tickets.csv")
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "topic", "sentiment"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(tickets())
    print(f"wrote {target}")
