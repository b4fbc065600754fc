"""Reaching the brokers with confluent-kafka: our settings as librdkafka properties, its errors as ours.

The librdkafka twin of ``lineage.transport.kafka.connection``: the same settings (where the brokers
are, SASL, TLS) mapped to librdkafka's property names, and the one place its authentication and
authorisation failures become our errors. The checks before connecting (a broker answering, the
TLS handshake, the SASL login) are the shared ``wait_for_broker``: our own sockets, so both clients
fail alike and at once, naming the setting to fix.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError

from lineage.errors import AuthenticationError, AuthorizationError
from lineage.settings import Settings

__all__ = ["client_config", "describe", "refusal"]

_CREDENTIALS = "sasl_username/sasl_password"
# librdkafka logs through this logger (served by poll()), never straight onto the user's stderr; silent
# unless the application configures logging, as kafka-python's "kafka" logger is
log = logging.getLogger("lineage.transport.confluent")
log.addHandler(logging.NullHandler())


def client_config(settings: Settings, *, client_suffix: str = "") -> dict[str, Any]:
    """Properties every librdkafka client takes from our settings: where the brokers are, who we are."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id + client_suffix,
        "socket.connection.setup.timeout.ms": int(settings.connect_timeout_s * 1000),
        "security.protocol": settings.security_protocol,
        "logger": log,
        # a broker going away is reported through our errors (deliveries failing with their ids);
        # librdkafka's own line for each closed connection would only repeat it
        "log.connection.close": False,
    }
    if settings.security_protocol.startswith("SASL_"):
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username
        config["sasl.password"] = settings.sasl_password
    if settings.security_protocol.endswith("SSL"):
        # "probe": the system's CA locations, as kafka-python's context does with load_default_certs()
        config["ssl.ca.location"] = str(settings.ssl_cafile) if settings.ssl_cafile is not None else "probe"
        config["ssl.endpoint.identification.algorithm"] = "https" if settings.ssl_check_hostname else "none"
        if settings.ssl_certfile is not None:
            config["ssl.certificate.location"] = str(settings.ssl_certfile)
            # a key in the same PEM file as the certificate, as Python's load_cert_chain accepts
            config["ssl.key.location"] = str(settings.ssl_keyfile or settings.ssl_certfile)
    return config


def describe(error: KafkaError) -> str:
    """The error librdkafka reported, as one line: its name and what it says."""
    text = error.str().strip().replace("\n", " ")
    return f"{error.name()}: {text}" if text and text != error.name() else error.name()


def refusal(
    error: KafkaError,
    settings: Settings,
    *,
    operation: str = "use",
    topic: str | None = None,
    group: str | None = None,
) -> AuthenticationError | AuthorizationError | None:
    """Our error for a librdkafka authentication or authorisation failure, or None for any other error.

    Worded as ``lineage.transport.kafka.connection.refusal`` words kafka-python's, so a user reads the
    same line whichever client is chosen. The password is never part of the message.
    """
    code = error.code()
    if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        return AuthenticationError(
            _CREDENTIALS,
            f"the broker at {settings.bootstrap_servers} refused user {settings.sasl_username!r} "
            f"with {settings.sasl_mechanism} (unknown user or wrong password)",
        )
    if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
        return AuthorizationError(operation, f"topic {topic or settings.topic}", f"as user {settings.sasl_username!r}")
    if code == KafkaError.GROUP_AUTHORIZATION_FAILED:
        return AuthorizationError("join", f"group {group}", f"as user {settings.sasl_username!r}")
    if code in (KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED):
        return AuthorizationError(operation, "the cluster", f"{error.name()}, as user {settings.sasl_username!r}")
    return None
