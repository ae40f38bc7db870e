"""The short-lived keys of the CDS cards' form links (reasoner/server/cds_hooks/form_links.py): a key
gives its pending order until it expires, at most ``capacity`` keys are kept (oldest out
first), keys are unguessable, and neither the prefetch nor the FHIR access token is kept."""

from __future__ import annotations

import datetime as dt

import pytest

from reasoner.server.cds_hooks.form_links import FormLinks
from reasoner.server.cds_hooks.request import HookRequest

BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": []}


def hook(n: int = 0) -> HookRequest:
    return HookRequest(
        hook_instance=f"instance-{n}",
        patient_id="p1",
        orders=[],
        prefetch={"patient": {"resourceType": "Patient", "id": "p1"}},
        fhir_server="https://ehr.example.org/fhir",
        access_token="secret-token",
        as_of=dt.date(2026, 12, 5),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gives_its_order_until_it_expires():
    clock = Clock()
    links = FormLinks(ttl=60, clock=clock)
    key = links.add("lbp-imaging-order-sign", hook(), BUNDLE)
    clock.now = 59.9
    pending = links.get(key)
    assert pending is not None and pending.service_id == "lbp-imaging-order-sign" and pending.bundle == BUNDLE
    assert pending.request.hook_instance == "instance-0"
    clock.now = 60.0
    assert links.get(key) is None


def test_neither_the_prefetch_nor_the_access_token_is_kept():
    links = FormLinks(ttl=60)
    pending = links.get(links.add("s", hook(), BUNDLE))
    assert pending is not None
    assert pending.request.access_token is None and pending.request.prefetch == {}
    assert pending.request.fhir_server == "https://ehr.example.org/fhir"


def test_at_most_capacity_keys_are_kept_the_oldest_forgotten_first():
    links = FormLinks(ttl=60, capacity=3)
    keys = [links.add("s", hook(n), BUNDLE) for n in range(5)]
    assert [links.get(k) is not None for k in keys] == [False, False, True, True, True]


def test_keys_are_long_random_and_unknown_keys_give_nothing():
    links = FormLinks(ttl=60)
    keys = {links.add("s", hook(), BUNDLE) for _ in range(200)}
    assert len(keys) == 200 and min(len(k) for k in keys) >= 43  # 256 bits, URL-safe base64
    assert links.get("not-a-key") is None and links.get("") is None


@pytest.mark.parametrize(("ttl", "capacity"), [(0, 10), (-1, 10), (60, 0)])
def test_a_lifetime_and_room_are_required(ttl, capacity):
    with pytest.raises(ValueError):
        FormLinks(ttl=ttl, capacity=capacity)
