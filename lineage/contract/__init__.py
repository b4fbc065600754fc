"""The event contract: what an event is and which events are valid. Pure domain, no heavy library.

- ``events``      frozen dataclasses matching ``schemas/personal_data_event.vN.avsc``
- ``records``     the same event as a schema-shaped dict, the form the hot paths handle
- ``taxonomy``    categories, purposes, roles, regions, mechanisms, from the TOML files in ``data/``
- ``validation``  the contract's rules; raises ``InvalidEventError`` naming the field
- ``rules``       coverage, crossing a border, sensitivity, minors: each defined once
- ``law``         notification duties, deadlines, PIPL tiers: the legal rules the reports cite
- ``policy``      an organisation's declared policy, read from a TOML file
"""
