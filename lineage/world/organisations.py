"""The seed world: the five organisations of ``../shared/seeds/``, modelled from their policies.

Each organisation's systems, parties and regions come from its policy (the clause-by-clause
reading is in ``policies/<key>.toml``); its ``life`` script says what happens to one data subject.
Rates are invented but plausible; the flows, categories and purposes are the policies' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from lineage.contract.events import AgeBand, Party
from lineage.contract.policy import load_policy, policy_dir
from lineage.contract.taxonomy import Taxonomy
from lineage.errors import UnknownValueError
from lineage.world.sim import Injected, Life, Organisation, Plan, WorldSize, inject, plan

__all__ = ["ORGANISATIONS", "build", "organisation"]


def _p(name: str, role: str, region: str) -> Party:
    return Party(name=name, role=role, region=region)


# -- MoChat (seed 003): a chat app storing in Hong Kong --------------------------------------------

MOCHAT_PARTIES = {
    p.name: p
    for p in (
        _p("bugly-crash-sdk", "processor", "CN"),
        _p("google-sign-in", "controller", "US"),
        _p("google-play-billing", "controller", "US"),
        _p("push-sdk", "processor", "CN"),
        _p("amap-location-sdk", "processor", "CN"),
        _p("anti-fraud-sdk", "processor", "HK"),
        _p("data-analytics-partner", "processor", "HK"),
        _p("content-safety-vendor", "processor", "HK"),
        _p("live-stream-partner", "third_party", "HK"),
        _p("mochat-affiliates", "affiliate", "HK"),
    )
}


def _mochat(s: Life) -> None:
    t = s.joined
    if s.age_band is AgeBand.MINOR:  # 14-17 may use it with a guardian's consent (Art. 6)
        s.consent(t, "mochat-app", "essential.service", ["user.childrens"], kind="GUARDIAN")
    if s.chance(0.3):  # Google account login: data comes from Google (Art. 1 §2(6))
        s.collect(
            t,
            "mochat-app",
            ["user.contact.email", "user.name"],
            "essential.service.authentication",
            source="google-sign-in",
        )
    else:
        s.collect(
            t, "mochat-app", ["user.contact.phone_number", "user.account.username"], "essential.service.authentication"
        )
    s.collect(t, "mochat-app", ["user.device.device_id", "user.location.coarse"], "essential.service")
    s.flow(t, "mochat-app", "anti-fraud-sdk", ["user.device.device_id"], "essential.fraud_detection")
    s.flow(t, "mochat-app", "push-sdk", ["user.device.device_id"], "essential.service.notifications")
    if s.chance(0.4):  # real-name verification, on separate consent (Art. 1 §1(2))
        v = s.later(t, 20)
        if v:
            s.consent(
                v,
                "mochat-app",
                "essential.legal_obligation.identity_verification",
                ["user.government_id.national_identification_number", "user.name"],
            )
            s.collect(
                v,
                "mochat-app",
                ["user.government_id.national_identification_number", "user.name"],
                "essential.legal_obligation.identity_verification",
                basis="CONSENT",
                encrypted=True,
            )
    sharing = s.chance(0.15) and s.later(t, 60)  # explicit consent to share with live-stream platforms
    if sharing:
        s.consent(sharing, "mochat-app", "third_party_sharing", ["user.account.username", "user.content.public"])
    for v in s.visits(3):
        s.collect(v, "mochat-im", ["user.content.private"], "essential.service")
        if s.chance(0.08):
            s.flow(
                v,
                "mochat-app",
                "bugly-crash-sdk",
                ["user.device.device_id", "user.device.telemetry"],
                "essential.service.operations.crash_reporting",
            )
        if s.chance(0.04):  # "nearby" features through the geolocation SDK (Art. 3(1)4(1))
            s.flow(v, "mochat-app", "amap-location-sdk", ["user.location.coarse"], "essential.service")
        if s.chance(0.05):
            s.flow(
                v,
                "mochat-im",
                "content-safety-vendor",
                ["user.content.public"],
                "essential.legal_obligation.content_review",
            )
        if s.chance(0.1):
            s.flow(
                v,
                "mochat-app",
                "google-play-billing",
                ["user.account.username", "user.behavior.purchase_history"],
                "essential.service.payment_processing",
            )
        if sharing and v > sharing and s.chance(0.3):
            s.flow(
                v,
                "mochat-app",
                "live-stream-partner",
                ["user.account.username", "user.content.public"],
                "third_party_sharing",
            )
    if s.chance(0.05):
        gone = s.later(t, 300)
        if gone:
            s.leave(gone, ["mochat-app", "mochat-im"], ["user"])


def _mochat_jobs(p: Plan) -> None:
    p.bulk(
        7,
        "mochat-app",
        "data-analytics-partner",
        ["user.device.device_id", "user.location.coarse"],
        "analytics.reporting",
    )
    p.bulk(
        30,
        "mochat-app",
        "mochat-affiliates",
        ["user.account.username", "user.device.device_id"],
        "essential.service.operations",
    )


# -- Moqi (seed 001): a Shanghai platform storing in mainland China --------------------------------

MOQI_PARTIES = {
    p.name: p
    for p in (
        _p("sms-verification-gateway", "processor", "CN"),
        _p("telecom-operator-quick-login", "controller", "CN"),
        _p("wechat-pay-sdk", "controller", "CN"),
        _p("order-merchants", "controller", "CN"),
        _p("sf-express", "processor", "CN"),
        _p("amap-location-sdk", "processor", "CN"),
        _p("wechat-login", "controller", "CN"),
        _p("promotion-partners", "third_party", "CN"),
        _p("user-research-partner", "processor", "CN"),
        _p("moqi-affiliates", "affiliate", "CN"),
        _p("risk-control-service", "processor", "CN"),
    )
}


def _moqi(s: Life) -> None:
    t = s.joined
    app = s.rng.choice(["moqi-app", "moqi-app", "moqi-miniprogram", "moqi-web"])
    s.collect(t, app, ["user.contact.phone_number"], "essential.service.authentication")
    if s.chance(0.5):
        s.flow(
            t, app, "telecom-operator-quick-login", ["user.contact.phone_number"], "essential.service.authentication"
        )
    else:
        s.flow(t, app, "sms-verification-gateway", ["user.contact.phone_number"], "essential.service.authentication")
    if app == "moqi-miniprogram":
        s.collect(
            t,
            app,
            ["user.account.username", "user.content.self_image"],
            "essential.service.authentication",
            source="wechat-login",
        )
    s.flow(
        t,
        app,
        "risk-control-service",
        ["user.contact.phone_number", "user.device.device_id"],
        "essential.fraud_detection",
    )
    if s.chance(0.25):  # real-name verification: ID numbers stay with us
        v = s.later(t, 10)
        if v:
            s.collect(
                v,
                app,
                ["user.government_id.national_identification_number", "user.name"],
                "essential.legal_obligation.identity_verification",
                basis="LEGAL_OBLIGATION",
                encrypted=True,
            )
    promo = s.chance(0.3) and s.later(t, 30)
    if promo:
        s.consent(promo, app, "third_party_sharing", ["user.contact.phone_number", "user.behavior.purchase_history"])
    for v in s.visits(1.5):
        s.collect(
            v,
            app,
            ["user.name", "user.contact.address", "user.behavior.purchase_history"],
            "essential.service.fulfillment",
        )
        s.flow(
            v,
            app,
            "wechat-pay-sdk",
            ["user.payment", "user.behavior.purchase_history"],
            "essential.service.payment_processing",
        )
        s.flow(
            v,
            app,
            "order-merchants",
            ["user.name", "user.contact.address", "user.contact.phone_number"],
            "essential.service.fulfillment",
        )
        if s.chance(0.3):
            s.flow(v, app, "amap-location-sdk", ["user.location.precise"], "essential.service")
        if promo and v > promo and s.chance(0.2):
            s.flow(
                v,
                app,
                "promotion-partners",
                ["user.contact.phone_number", "user.behavior.purchase_history"],
                "third_party_sharing",
            )


def _moqi_jobs(p: Plan) -> None:
    for system in ("moqi-app", "moqi-web", "moqi-miniprogram"):
        p.bulk(
            1,
            system,
            "sf-express",
            ["user.name", "user.contact.address", "user.contact.phone_number"],
            "essential.service.fulfillment.delivery",
        )
    p.bulk(30, "moqi-app", "user-research-partner", ["user.behavior.purchase_history"], "analytics.reporting")
    p.bulk(30, "moqi-app", "moqi-affiliates", ["user.account.username"], "essential.service.operations")


# -- Huatuo (seed 002, Russian-language): a Shenzhen platform with servers in China or Singapore ----

HUATUO_PARTIES = {
    p.name: p
    for p in (
        _p("cloud-hosting-cn", "processor", "CN"),
        _p("cloud-hosting-sg", "processor", "SG"),
        _p("identity-document-check", "processor", "CN"),
    )
}


def _huatuo(s: Life) -> None:
    t = s.joined
    s.collect(t, "huatuo-web", ["user.name", "user.contact.email", "user.contact.phone_number"], "essential.service")
    host = "cloud-hosting-sg" if s.jurisdiction != "CN" and s.chance(0.7) else "cloud-hosting-cn"
    s.flow(t, "huatuo-web", host, ["user.name", "user.contact.email", "user.contact.phone_number"], "essential.service")
    if s.chance(0.2):
        s.flow(
            t,
            "huatuo-web",
            "identity-document-check",
            ["user.government_id.passport_number"],
            "essential.legal_obligation.identity_verification",
        )
    news = s.chance(0.4) and s.later(t, 5)
    if news:
        s.consent(news, "huatuo-web", "marketing.communications.email", ["user.contact.email"])
        s.collect(news, "huatuo-web", ["user.contact.email"], "marketing.communications.email", basis="CONSENT")
        stop = s.chance(0.2) and s.later(news, 200)
        if stop:
            s.consent(stop, "huatuo-web", "marketing.communications.email", ["user.contact.email"], status="WITHDRAWN")
    for v in s.visits(2):
        s.collect(
            v,
            "huatuo-platform",
            ["user.contact.address", "user.behavior.purchase_history", "user.payment"],
            "essential.service.fulfillment",
        )
        s.flow(
            v,
            "huatuo-platform",
            host,
            ["user.contact.address", "user.behavior.purchase_history"],
            "essential.service.fulfillment",
        )


# -- Mooffers (seed 000): a consultancy website with inquiry forms and short log retention ----------

MOOFFERS_PARTIES = {p.name: p for p in (_p("server-hosting", "processor", "CN"), _p("sms-gateway", "processor", "CN"))}


def _mooffers(s: Life) -> None:
    for v in s.visits(1.0, after=s.joined - _HOUR):
        s.collect(
            v,
            "mooffers-web",
            ["user.behavior.access_log", "user.device.ip_address", "user.behavior.browsing_history"],
            "essential.service.operations",
            basis="LEGITIMATE_INTERESTS",
        )
    if s.chance(0.3):  # an inquiry form
        t = s.later(s.joined, 60)
        if t:
            s.collect(
                t,
                "mooffers-crm",
                [
                    "user.name",
                    "user.contact.email",
                    "user.contact.phone_number",
                    "user.professional_information.workplace",
                ],
                "essential.service.operations.support",
            )
            s.flow(
                t, "mooffers-crm", "sms-gateway", ["user.contact.phone_number"], "essential.service.notifications.sms"
            )
            if s.chance(0.4):
                s.consent(t, "mooffers-crm", "marketing.communications.email", ["user.contact.email"])
                s.collect(t, "mooffers-crm", ["user.contact.email"], "marketing.communications.email", basis="CONSENT")


def _mooffers_jobs(p: Plan) -> None:
    p.bulk(1, "mooffers-web", "server-hosting", ["user.behavior", "user.device"], "essential.service.operations")


# -- The mall (seed 004): e-commerce with payment gateways, couriers and marketing agencies ---------

MALL_PARTIES = {
    p.name: p
    for p in (
        _p("card-payment-gateway", "processor", "US"),
        _p("parcel-courier", "processor", "US"),
        _p("promo-marketing-agency", "processor", "US"),
        _p("it-maintenance-vendor", "processor", "US"),
    )
}


def _mall(s: Life) -> None:
    t = s.joined
    online = s.chance(0.8)
    shop = s.rng.choice(["mall-web", "mall-app"]) if online else "mall-stores"
    s.collect(
        t,
        shop,
        [
            "user.name",
            "user.contact.email",
            "user.contact.phone_number",
            "user.contact.address",
            "user.authorization.password",
        ],
        "essential.service",
    )
    for v in s.visits(1.2):
        s.collect(
            v,
            shop,
            ["user.behavior.purchase_history", "user.financial.credit_card"],
            "essential.service.payment_processing",
        )
        s.flow(
            v,
            shop,
            "card-payment-gateway",
            ["user.financial.credit_card", "user.name"],
            "essential.service.payment_processing",
        )
        if online:
            s.flow(
                v,
                shop,
                "parcel-courier",
                ["user.name", "user.contact.address", "user.contact.phone_number"],
                "essential.service.fulfillment.delivery",
            )
    if s.chance(0.04):
        gone = s.later(t, 200)
        if gone:
            s.leave(gone, [shop], ["user"])


def _mall_jobs(p: Plan) -> None:
    p.bulk(
        7,
        "mall-web",
        "promo-marketing-agency",
        ["user.contact.email", "user.behavior.purchase_history"],
        "marketing.communications.email",
    )
    p.bulk(
        30, "mall-app", "it-maintenance-vendor", ["user.account", "user.contact.email"], "essential.service.operations"
    )


_HOUR = timedelta(hours=1)

ORGANISATIONS: tuple[Organisation, ...] = (
    Organisation(
        "mochat",
        "MoChat",
        "003",
        {"mochat-app": "HK", "mochat-im": "HK", "mochat-web": "HK"},
        MOCHAT_PARTIES,
        {"CN": 0.7, "HK": 0.3},
        _mochat,
        _mochat_jobs,
        minors=0.1,
    ),
    Organisation(
        "moqi-shanghai",
        "Shanghai Moqi Zhihang",
        "001",
        {"moqi-app": "CN", "moqi-web": "CN", "moqi-miniprogram": "CN"},
        MOQI_PARTIES,
        {"CN": 1.0},
        _moqi,
        _moqi_jobs,
    ),
    Organisation(
        "shenzhen-ru",
        "Shenzhen Huatuomingtongong",
        "002",
        {"huatuo-web": "CN", "huatuo-platform": "CN"},
        HUATUO_PARTIES,
        {"RU": 0.6, "KZ": 0.2, "CN": 0.2},
        _huatuo,
    ),
    Organisation(
        "mooffers",
        "Mooffers",
        "000",
        {"mooffers-web": "CN", "mooffers-crm": "CN"},
        MOOFFERS_PARTIES,
        {"CN": 0.6, "US": 0.2, "DE": 0.2},
        _mooffers,
        _mooffers_jobs,
        minors=0.05,
    ),
    Organisation(
        "mall",
        "Mall",
        "004",
        {"mall-web": "US", "mall-app": "US", "mall-stores": "US"},
        MALL_PARTIES,
        {"US-CA": 0.5, "US-NY": 0.3, "US": 0.2},
        _mall,
        _mall_jobs,
    ),
)


def organisation(key: str) -> Organisation:
    """The seed organisation named ``key`` (also its policy file's stem)."""
    for org in ORGANISATIONS:
        if org.key == key:
            return org
    raise UnknownValueError("organisation", key, "organisation", [o.key for o in ORGANISATIONS])


def build(size: WorldSize, taxonomy: Taxonomy, keys: Sequence[str] | None = None) -> tuple[list[Plan], list[Injected]]:
    """Plan the seed organisations (all, or those named) and inject ``size.violations`` breaches per clause."""
    plans, injected = [], []
    for org in ORGANISATIONS if keys is None else [organisation(k) for k in dict.fromkeys(keys)]:
        p = plan(org, load_policy(policy_dir() / f"{org.key}.toml", taxonomy), taxonomy, size)
        injected.extend(inject(p, size.violations))
        plans.append(p)
    return plans, injected
