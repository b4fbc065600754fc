"""What a service uses to emit events: the ``Emitter``, and the JSON-lines reader behind ``lineage emit``."""
