"""The answers people came for, each parameterised SQL from ``queries/`` over the store.

- ``access``        a person's access request and erasure plan
- ``breach``        breach impact and the indicative notification plan
- ``registers``     the cross-border transfer and retention registers
- ``ropa``          the record of processing activities, with PIPL impact-assessment flags
- ``policy_check``  each event breaking a declared policy's clause
- ``graph``         the flow graph of holders and regions; the only module importing networkx
- ``mapdata``       what the data map draws: the flows between holders, and where each violation sits
- ``rows``          the typed rows they return
"""

from lineage.answers._common import now
from lineage.answers.access import AccessReport, ErasurePlan, access_request, erasure_plan, person_answers
from lineage.answers.breach import BreachReport, breach_impact
from lineage.answers.registers import retention_register, transfers_register
from lineage.contract.law import Notification, pipl_tier

__all__ = [
    "AccessReport",
    "BreachReport",
    "ErasurePlan",
    "Notification",
    "access_request",
    "breach_impact",
    "erasure_plan",
    "now",
    "person_answers",
    "pipl_tier",
    "retention_register",
    "transfers_register",
]
