"""The demo: emit a small sample of the seed world's events through a real broker and read them back.

The sample follows the seed policies: a Shanghai platform that collects phone numbers and ID numbers
for real-name verification, pays through a payment SDK, sends chat data to Hong Kong under the Greater
Bay Area standard contract, exports orders nightly to a logistics company, keeps a guardian's consent
for a child under 14, and puts an erasure on hold where tax law requires retention.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lineage.codec import Codec
from lineage.emitter import Emitter
from lineage.events import AgeBand, Party, PersonalDataEvent
from lineage.kafka_client import create_topics, read_messages
from lineage.settings import Settings

__all__ = ["emit_sample", "read_back", "run_demo"]

_T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
PAYMENT_SDK = Party(name="alipay-sdk", role="processor", region="CN")
HK_CHAT = Party(name="mochat-hk-storage", role="affiliate", region="HK")
LOGISTICS = Party(name="sf-express", role="third_party", region="CN")
SG_ANALYTICS = Party(name="sg-analytics", role="processor", region="SG")


def emit_sample(emitter: Emitter) -> int:
    """Send the sample events; return how many were sent."""
    at = iter(_T0 + timedelta(minutes=i) for i in range(100))
    sent = [
        emitter.collected(
            "user-1001",
            ["user.contact.phone_number", "user.government_id.national_identification_number"],
            purpose="essential.legal_obligation.identity_verification",
            legal_basis="LEGAL_OBLIGATION",
            subject_jurisdiction="CN",
            age_band=AgeBand.ADULT,
            retention_days=3 * 365,
            encrypted=True,
            occurred_at=next(at),
        ),
        emitter.consent(
            "user-1002",
            ["user.childrens"],
            status="GRANTED",
            kind="GUARDIAN",
            purpose="essential.service",
            consent_ref="guardian-form-77",
            subject_jurisdiction="CN",
            age_band=AgeBand.CHILD_UNDER_14,
            occurred_at=next(at),
        ),
        emitter.shared(
            "user-1001",
            ["user.financial.bank_account"],
            recipient=PAYMENT_SDK,
            purpose="essential.service.payment_processing",
            legal_basis="CONTRACT",
            occurred_at=next(at),
        ),
        emitter.transferred(
            "user-1001",
            ["user.contact.phone_number", "user.content.private"],
            recipient=HK_CHAT,
            purpose="essential.service",
            mechanism="gba.standard_contract",
            encrypted=True,
            occurred_at=next(at),
        ),
        emitter.shared(
            None,
            ["user.contact.address", "user.name"],
            recipient=LOGISTICS,
            purpose="essential.service.fulfillment.delivery",
            bulk_as_of=_T0,
            occurred_at=next(at),
        ),
        emitter.transferred(
            None,
            ["user.device.device_id"],
            recipient=SG_ANALYTICS,
            purpose="analytics.reporting",
            mechanism="pipl.standard_contract",
            bulk_as_of=_T0,
            occurred_at=next(at),
        ),
        emitter.erased(
            "user-1001",
            ["user.financial.bank_account"],
            outcome="HOLD",
            hold_reason="PRC tax law: transaction records kept 10 years",
            occurred_at=next(at),
        ),
    ]
    emitter.flush()
    for delivery in sent:
        delivery.result(0)
    return len(sent)


def read_back(settings: Settings, count: int, codec: Codec | None = None) -> list[PersonalDataEvent]:
    """Read ``count`` events from the start of the topic and decode them."""
    codec = codec or Codec()
    out = []
    for m in read_messages(settings, settings.topic, idle_timeout_s=10, max_messages=count):
        assert m.value is not None
        out.append(codec.decode(m.value, topic=m.topic, partition=m.partition, offset=m.offset))
    return out


def run_demo(settings: Settings, say: Callable[[str], None]) -> list[PersonalDataEvent]:
    """Emit the sample to ``settings.topic`` and read it back, narrating through ``say``."""
    create_topics(settings, [settings.topic, settings.dead_letter_topic], partitions=3)
    with Emitter(system="moqi-app", region="CN", settings=settings) as emitter:
        n = emit_sample(emitter)
    say(f"emitted {n} events to {settings.topic} at {settings.bootstrap_servers}")
    events = read_back(settings, n)
    say(f"read back {len(events)} events")
    return events
