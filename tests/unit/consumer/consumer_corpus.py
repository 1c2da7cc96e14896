"""The corpus of real-format stream messages (corpus.json) with what each must count as.

The integration tests publish the same file through a real nats-server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS_FILE = Path(__file__).with_name("corpus.json")


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    malformed: str | None  # the reason, for a message that must count as malformed
    type: str | None  # the event type, for a well-formed one
    events: tuple[tuple[str, int | None], ...]
    bad_elements: int  # elements of a list left out for a missing or bad symbol (bad_list_element)


def load_corpus() -> list[Case]:
    cases = []
    for entry in json.loads(CORPUS_FILE.read_text()):
        expect = entry["expect"]
        cases.append(
            Case(
                name=entry["name"],
                payload=json.dumps(entry["message"]).encode(),
                malformed=expect.get("malformed"),
                type=expect.get("type"),
                events=tuple((symbol, time) for symbol, time in expect.get("events", [])),
                bad_elements=expect.get("bad_elements", 0),
            )
        )
    return cases


CORPUS = load_corpus()
WELL_FORMED = [case for case in CORPUS if case.malformed is None]
