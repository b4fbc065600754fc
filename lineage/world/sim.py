"""The simulator's engine: plan a seed organisation's events, inject known breaches, emit them.

An organisation (``lineage.world.organisations``) is a set of systems, the parties it works with, and a ``life``
script that says what happens to one data subject: signs up, verifies identity, orders, is shared
with a payment SDK... Scripts call ``Life`` methods, which plan events; ``Plan`` keeps them with
ids drawn from a seeded random generator, so a seed gives the same events, byte for byte.

Services that keep their promises are simulated as such: a ``Plan`` erases each collected category
when the policy's retention period for it ends. Breaches exist only where ``inject`` puts them, and
each comes with the clause it breaks, so ``lineage check`` can be held to finding exactly those.

``emit`` sends the planned events, in time order, through one ``Emitter`` per system: the SDK's own
validation, encoding and Kafka path.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lineage.contract.events import AgeBand, Party
from lineage.contract.law import GBA_ZONES
from lineage.contract.policy import Policy
from lineage.contract.rules import covers, crosses_border
from lineage.contract.taxonomy import Taxonomy, suggest
from lineage.errors import ConfigurationError, UnknownValueError
from lineage.settings import Settings
from lineage.transport.sink import EventSink

__all__ = ["DEFAULT_END", "Injected", "Life", "Organisation", "Plan", "Planned", "WorldSize", "emit", "inject"]

DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
# transfer mechanisms tried in this order for a cross-border flow; the first the source recognises
# wins (the Greater Bay Area contract only between the mainland and Hong Kong or Macao)
_MECHANISMS = ("pipl.standard_contract", "pdpo_hk.model_clauses", "pdpa_sg.contract", "gdpr.scc", "contract.dpa")


@dataclass(frozen=True, slots=True)
class WorldSize:
    """How much world to simulate: subjects per organisation, days of history, breaches per clause."""

    subjects: int = 1000
    days: int = 365
    seed: int = 7
    violations: int = 2
    end: datetime = DEFAULT_END

    def __post_init__(self) -> None:
        """Refuse a size that cannot make a world, naming the field."""
        for name, least in (("subjects", 1), ("days", 1), ("violations", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ConfigurationError(name, f"must be a whole number of at least {least}, got {value!r}")
        if self.end.tzinfo is None:
            raise ConfigurationError("end", f"needs a UTC offset, got {self.end.isoformat()}")

    @property
    def start(self) -> datetime:
        """The first day of the simulated history."""
        return self.end - self.days * _DAY


@dataclass(frozen=True, slots=True)
class Planned:
    """One event to send: which system sends it, when, through which ``Emitter`` method."""

    at: datetime
    system: str
    method: str  # collected | shared | transferred | erased | consent
    fields: dict[str, Any]
    event_id: str


@dataclass(frozen=True, slots=True)
class Injected:
    """A breach the simulator put in on purpose: the clause it breaks and the event that shows it."""

    organisation: str
    clause: str
    event_id: str
    what: str


@dataclass(frozen=True, slots=True)
class Organisation:
    """A seed organisation: its systems (name -> region), parties, population and what happens to a subject."""

    key: str  # also the policy file's stem
    name: str
    seed_file: str
    systems: dict[str, str]
    parties: dict[str, Party]
    jurisdictions: dict[str, float]  # subject jurisdiction -> share of the population
    life: Callable[[Life], None]
    jobs: Callable[[Plan], None] = lambda plan: None  # bulk exports and other organisation-wide events
    minors: float = 0.0  # share of subjects aged 14-17

    def party(self, name: str) -> Party:
        """A party by name (a system of ours is an 'internal' party)."""
        if name in self.systems:
            return Party(name=name, role="internal", region=self.systems[name])
        if name not in self.parties:
            raise UnknownValueError("recipient", name, f"party of {self.key}", suggest(name, self.parties))
        return self.parties[name]


@dataclass
class Plan:
    """The planned events of one organisation, and what the scripts need to stay within the policy."""

    org: Organisation
    policy: Policy
    taxonomy: Taxonomy
    size: WorldSize
    rng: random.Random
    events: list[Planned] = field(default_factory=list)
    consented: dict[str, set[str]] = field(default_factory=dict)  # purpose -> subjects who ever granted it
    adults: list[str] = field(default_factory=list)
    jurisdiction: dict[str, str] = field(default_factory=dict)  # subject -> where they live

    def event_id(self) -> str:
        """A UUID drawn from the plan's generator (so a seed reproduces the ids)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, at: datetime, system: str, method: str, **fields: Any) -> str:
        """Plan one event; return its id."""
        if system not in self.org.systems:
            raise UnknownValueError("system", system, f"system of {self.org.key}", suggest(system, self.org.systems))
        event_id = self.event_id()
        self.events.append(Planned(at, system, method, fields, event_id))
        return event_id

    def mechanism(self, source: str, recipient: Party) -> str | None:
        """A transfer mechanism the source region recognises, or None when the data stays in its zone."""
        src = self.taxonomy.region("holder.region", source)
        dst = self.taxonomy.region("recipient.region", recipient.region)
        if not crosses_border(self.taxonomy, source, recipient.region):
            return None
        if {src.zone, dst.zone} <= GBA_ZONES:
            return "gba.standard_contract"
        found = next((m for m in _MECHANISMS if self.taxonomy.mechanisms[m].recognised_by(src.regimes)), None)
        if found is None:
            raise ConfigurationError("taxonomy", f"no transfer mechanism in {_MECHANISMS} is recognised in {source}")
        return found

    def flow(
        self, at: datetime, system: str, recipient: str | Party, categories: Sequence[str], purpose: str, **fields: Any
    ) -> str:
        """Plan a share, or a cross-border transfer when the recipient is in another zone (bulk without subject_id)."""
        party = recipient if isinstance(recipient, Party) else self.org.party(recipient)
        mechanism = self.mechanism(self.org.systems[system], party)
        method = "shared" if mechanism is None else "transferred"
        return self.add(
            at,
            system,
            method,
            subject_id=fields.pop("subject_id", None),
            categories=list(categories),
            recipient=party,
            purpose=purpose,
            mechanism=mechanism,
            **fields,
        )

    def daily(self, every_days: int) -> Iterator[datetime]:
        """Job times: at 02:00 every ``every_days`` days across the history."""
        at = self.size.start.replace(hour=2)
        while at < self.size.end:
            yield at
            at += every_days * _DAY

    def bulk(self, every_days: int, system: str, recipient: str, categories: Sequence[str], purpose: str) -> None:
        """A recurring export of everything the system holds of ``categories`` to ``recipient``."""
        for at in self.daily(every_days):
            self.flow(at, system, recipient, categories, purpose, bulk_as_of=at)

    def retention_days(self, category: str) -> int | None:
        """The shortest retention period the policy gives ``category``, if any."""
        days = [d for k, d in self.policy.retention_days.items() if covers(k, category)]
        return min(days) if days else None


class Life:
    """Plans the events of one data subject; an organisation's ``life`` script drives it."""

    def __init__(self, plan: Plan, subject: str, joined: datetime, age_band: AgeBand, jurisdiction: str) -> None:
        """A subject who first meets the organisation at ``joined``."""
        self.plan = plan
        self.rng = plan.rng
        self.subject = subject
        self.joined = joined
        self.age_band = age_band
        self.jurisdiction = jurisdiction
        self.left: datetime | None = None  # set by ``leave``: no events after it

    @property
    def end(self) -> datetime:
        """When this subject's history stops: they left, or the simulation ends."""
        return self.left or self.plan.size.end

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.rng.random() < p

    def later(self, at: datetime, max_days: float = 30.0) -> datetime | None:
        """A moment within ``max_days`` after ``at``, or None past this subject's end."""
        t = at + timedelta(days=self.rng.uniform(0.01, max_days))
        return t if t < self.end else None

    def visits(self, per_month: float, after: datetime | None = None) -> list[datetime]:
        """Times of a recurring activity, ``per_month`` times a month on average (a Poisson process)."""
        out: list[datetime] = []
        at = after or self.joined
        while per_month > 0:
            at += timedelta(days=self.rng.expovariate(per_month / 30.0))
            if at >= self.end:
                return out
            out.append(at)
        return out

    def _about(self) -> dict[str, Any]:
        return {"subject_id": self.subject, "subject_jurisdiction": self.jurisdiction, "age_band": self.age_band}

    def collect(
        self, at: datetime, system: str, categories: Sequence[str], purpose: str, basis: str = "CONTRACT", **fields: Any
    ) -> str:
        """Plan a collection, and its erasure when the policy's retention period for it ends."""
        event_id = self.plan.add(
            at,
            system,
            "collected",
            categories=list(categories),
            purpose=purpose,
            legal_basis=basis,
            **self._about(),
            **fields,
        )
        expiring: dict[int, list[str]] = {}
        for c in categories:
            days = self.plan.retention_days(c)
            if days is not None:
                expiring.setdefault(days, []).append(c)
        for days, cats in sorted(expiring.items()):
            # erased half a day before the period ends: the retention job the policy promises
            purge = at + timedelta(days=days) - timedelta(hours=12)
            if purge < self.plan.size.end:
                self.plan.add(purge, system, "erased", categories=cats, outcome="ANONYMISED", **self._about())
        return event_id

    def flow(
        self, at: datetime, system: str, recipient: str, categories: Sequence[str], purpose: str, **fields: Any
    ) -> str:
        """Plan a share or a cross-border transfer of this subject's data."""
        return self.plan.flow(at, system, recipient, categories, purpose, **self._about(), **fields)

    def consent(
        self,
        at: datetime,
        system: str,
        purpose: str,
        categories: Sequence[str],
        status: str = "GRANTED",
        kind: str = "SEPARATE",
    ) -> None:
        """Plan a consent record; a grant is remembered so injected breaches can avoid this subject."""
        self.plan.add(
            at,
            system,
            "consent",
            categories=list(categories),
            status=status,
            kind=kind,
            purpose=purpose,
            consent_ref=f"form-{self.rng.randrange(10**6):06d}",
            **self._about(),
        )
        if status == "GRANTED":
            self.plan.consented.setdefault(purpose, set()).add(self.subject)

    def leave(self, at: datetime, systems: Iterable[str], categories: Sequence[str]) -> None:
        """The subject deletes the account: erasure at each system, and nothing more after ``at``."""
        for system in systems:
            self.plan.add(at, system, "erased", categories=list(categories), **self._about())
        self.left = at


def plan(org: Organisation, policy: Policy, taxonomy: Taxonomy, size: WorldSize) -> Plan:
    """Every event of a compliant organisation over the simulated history."""
    p = Plan(org, policy, taxonomy, size, random.Random(f"{size.seed}:{org.key}"))
    regions, weights = list(org.jurisdictions), list(org.jurisdictions.values())
    span = (size.end - size.start) / _DAY
    for i in range(size.subjects):
        minor = p.rng.random() < org.minors
        joined = size.start + timedelta(days=p.rng.uniform(0, span - 0.5))
        life = Life(
            p,
            f"{org.key}-{i:06d}",
            joined,
            AgeBand.MINOR if minor else AgeBand.ADULT,
            p.rng.choices(regions, weights)[0],
        )
        p.jurisdiction[life.subject] = life.jurisdiction
        if not minor:
            p.adults.append(life.subject)
        org.life(life)
    org.jobs(p)
    return p


def inject(p: Plan, count: int) -> list[Injected]:
    """Add ``count`` breaches of each clause the policy has; return them with the clause each breaks.

    Each injected event breaks exactly one clause: it carries an everyday category (not one a
    ``never_share`` or ``retention`` rule names, unless that is the clause), a purpose that needs no
    consent, and an adult subject.
    """
    rng = random.Random(f"{p.size.seed}:{p.org.key}:inject")
    org, pol = p.org, p.policy
    system = next(iter(org.systems))
    home = org.systems[system]
    everyday, purpose = "user.account.username", "essential.service"
    out: list[Injected] = []

    def recent() -> datetime:
        return p.size.end - timedelta(days=rng.uniform(0.5, min(30.0, p.size.days - 0.5)))

    def adult(among: Sequence[str] | None = None) -> dict[str, Any]:
        """An adult subject (of ``among`` when given), or a new one when there is none to pick."""
        pool = p.adults if among is None else among
        subject = rng.choice(pool) if pool else f"{org.key}-adult-{len(out) + 1}"
        where = p.jurisdiction.get(subject, next(iter(org.jurisdictions)))
        return {"subject_id": subject, "subject_jurisdiction": where, "age_band": AgeBand.ADULT}

    def note(clause: str, event_id: str, what: str) -> None:
        out.append(Injected(org.key, clause, event_id, what))

    allowed = pol.transfer_regions or (home,)
    stored = pol.storage_regions
    for _ in range(count if stored is not None else 0):
        region = rng.choice([r for r in ("US", "JP", "DE", "SG", "HK", "CN") if r not in (stored or ())])
        holder = Party(name=system, role="internal", region=region)
        eid = p.add(
            recent(),
            system,
            "collected",
            categories=[everyday],
            purpose=purpose,
            legal_basis="CONTRACT",
            holder=holder,
            **adult(),
        )
        note("storage_region", eid, f"{system} keeps data in {region}")
    listed = [n for n in (pol.recipients or {}) if n in org.parties]
    sent = pol.transfer_regions
    for _ in range(count if sent is not None else 0):
        name = rng.choice(listed)
        region = rng.choice([r for r in ("US", "JP", "DE", "RU", "SG") if r not in (sent or ())])
        party = Party(name=name, role=org.parties[name].role, region=region)
        eid = p.flow(recent(), system, party, [everyday], purpose, **adult())
        note("transfer_region", eid, f"{name} in {region}")
    for i in range(count if pol.recipients is not None else 0):
        stranger = Party(name=f"unlisted-ad-network-{i + 1}", role="third_party", region=rng.choice(allowed))
        eid = p.flow(recent(), system, stranger, [everyday], purpose, **adult())
        note("recipient", eid, f"{stranger.name} is not a listed recipient")
    for categories, roles in pol.never_share:
        targets = [n for n in listed if org.parties[n].role in roles and org.parties[n].region in allowed]
        # a rule no listed recipient can break (none has the role) is left alone: breaking it with
        # an unlisted party would break the recipient clause too
        for _ in range(count if targets else 0):
            name = rng.choice(targets)
            eid = p.flow(recent(), system, name, [categories[0]], purpose, **adult())
            note("never_share", eid, f"{categories[0]} given to {name}")
    if pol.minimum_age is not None:
        band = AgeBand.MINOR if pol.minimum_age >= 18 else AgeBand.CHILD_UNDER_14
        for i in range(count):
            child = {
                "subject_id": f"{org.key}-child-{i + 1}",
                "subject_jurisdiction": next(iter(org.jurisdictions)),
                "age_band": band,
            }
            eid = p.add(
                recent(), system, "collected", categories=[everyday], purpose=purpose, legal_basis="CONTRACT", **child
            )
            note("minimum_age", eid, f"a subject in age band {band}")
    for key, days in sorted(pol.retention_days.items()):
        category = everyday if covers(key, everyday) and everyday != key else key
        for i in range(count):
            # a subject seen once, long ago, whose data the retention job missed
            at = p.size.end - timedelta(days=days + rng.uniform(5, 60))
            eid = p.add(
                at,
                system,
                "collected",
                categories=[category],
                purpose=purpose,
                legal_basis="CONTRACT",
                subject_id=f"{org.key}-stale-{i + 1}",
                subject_jurisdiction=next(iter(org.jurisdictions)),
                age_band=AgeBand.ADULT,
            )
            note("retention", eid, f"{category} kept past {days} days")
    for needs in pol.consent_purposes:
        never = [s for s in p.adults if s not in p.consented.get(needs, set())]
        for _ in range(count):
            eid = p.add(
                recent(),
                system,
                "collected",
                categories=[everyday],
                purpose=needs,
                legal_basis="CONSENT",
                **adult(never),
            )
            note("consent", eid, f"{needs} without a recorded consent")
    return out


def emit(
    plans: Iterable[Plan],
    sink: EventSink,
    taxonomy: Taxonomy,
    settings: Settings | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send every planned event in time order, through one ``Emitter`` per system; return the count.

    ``settings`` name the topic (the sink only carries bytes); the default is ``Settings()``.
    """
    from lineage.sdk.emitter import Emitter

    emitters: dict[str, Emitter] = {}
    queue: list[Planned] = []
    for p in plans:
        for name, region in p.org.systems.items():
            emitters[name] = Emitter(system=name, region=region, settings=settings, sink=sink, taxonomy=taxonomy)
        queue.extend(p.events)
    queue.sort(key=lambda e: (e.at, e.event_id))
    for n, e in enumerate(queue, 1):
        getattr(emitters[e.system], e.method)(**e.fields, occurred_at=e.at, event_id=e.event_id)
        if progress is not None and n % 50_000 == 0:
            progress(n)
    for em in emitters.values():
        em.flush()
    return len(queue)
