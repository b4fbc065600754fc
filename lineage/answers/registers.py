"""The registers an organisation keeps: cross-border transfers (PIPL Art. 38-39, GDPR Chapter V) and retention."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from lineage.answers._common import check_time
from lineage.answers._common import now as clock
from lineage.answers.rows import RetentionRow, TransferRow
from lineage.contract.law import ANY_VOLUME_MECHANISMS, PIPL_RULE, PIPL_ZONE, mechanisms_for_tier, pipl_tier
from lineage.contract.taxonomy import Taxonomy
from lineage.store import Store

__all__ = ["retention_register", "transfers_register"]


def transfers_register(store: Store, taxonomy: Taxonomy, as_of: datetime | None = None) -> list[TransferRow]:
    """Cross-border flows by year, route, recipient and mechanism, set against the PIPL thresholds.

    Flags a flow without a mechanism, and a PIPL flow whose mechanism is weaker than the year's
    volume asks for (the contract, HR and emergency exemptions hold at any volume). The tier counts
    what leaves PIPL's zone, and as sensitive only what PIPL Art. 28 calls sensitive: a category
    sensitive under GDPR or CPRA alone counts in ``sensitive_individuals`` but not towards the tier.
    """
    as_of = as_of or clock()
    check_time("as_of", as_of)
    params = {"as_of": as_of, "pipl_zone": PIPL_ZONE, "pipl_sensitive": taxonomy.pipl_sensitive_keys()}
    out: list[TransferRow] = []
    for row in store.rows("transfers", params, taxonomy):
        tier = None
        flag = "no transfer mechanism" if row["lacks_mechanism"] else ""
        if row["pipl_year_individuals"] is not None:
            tier = pipl_tier(row["pipl_year_individuals"], row["pipl_year_sensitive_individuals"])
            needed = mechanisms_for_tier(tier)
            mechanism = row["mechanism"]
            if needed and mechanism and mechanism not in needed and mechanism not in ANY_VOLUME_MECHANISMS:
                flag = f"{mechanism} is weaker than the year's volume needs ({tier}; {PIPL_RULE})"
        out.append(cast(TransferRow, {**row, "pipl_tier": tier, "flag": flag}))
    return out


def retention_register(store: Store, now: datetime | None = None) -> list[RetentionRow]:
    """Data still held past its retention period, by holder and category."""
    now = now or clock()
    check_time("now", now)
    return cast(list[RetentionRow], store.rows("retention", {"now": now}))
