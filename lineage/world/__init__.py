"""The seed world: the five seed organisations simulated through the SDK, and the demo.

- ``sim``            a simulated organisation's plan of events, emitted through a sink
- ``organisations``  the five organisations of ``../shared/seeds/``, with known injected breaches
- ``demo``           all of it end to end on a real broker
"""
