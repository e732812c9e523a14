"""The local identity provider lists the people the portal's demo data knows, so that each of them
can sign in with "Bruk jobbkonto" in a local run."""

from __future__ import annotations

from identity_simulator.settings import DEFAULT_PEOPLE
from portal_api.seed import DEMO_COMPANIES


def test_the_identity_simulator_lists_every_demo_person_of_both_companies() -> None:
    seeded = [(person.name, person.email) for company in DEMO_COMPANIES for person in company.people]
    listed = [(person.name, person.email) for person in DEFAULT_PEOPLE]
    # Nobody missing, nobody extra (the sign-in page's order is the simulator's own).
    assert sorted(listed) == sorted(seeded)
    assert all(person.email_verified for person in DEFAULT_PEOPLE)
