"""The HTTP gateway behind ``lineage gateway serve``: events as JSON over HTTP, for services in any language.

- ``tokens``   service tokens, each scoped to the systems it may emit as, kept hashed in a private file
- ``limits``   the per-token rate bound
- ``intake``   a request body into validated events, or errors naming the event's index and field
- ``relay``    events to Kafka through the SDK's emitter: answered only once acknowledged (or spooled)
- ``app``      the FastAPI app (the only module here that imports the web stack)
- ``server``   serving it with uvicorn
"""
