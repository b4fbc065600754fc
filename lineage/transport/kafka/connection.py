"""Reaching the brokers: the settings every kafka-python client shares, and a bounded wait for a broker.

The one home of connection options, so producers, consumers and the admin client connect alike:
where the brokers are, and how we prove who we are (SASL) and check who they are (TLS). Also the
one place kafka-python's authentication and authorisation failures become our errors.
"""

from __future__ import annotations

import functools
import socket
import ssl
import time
from typing import Any

import kafka.errors
from kafka.net.inet import KafkaNetSocket
from kafka.net.sasl import get_sasl_mechanism
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

from lineage.errors import AuthenticationError, AuthorizationError, BrokerUnavailableError, ConfigurationError
from lineage.settings import Settings
from lineage.transport.probe import Answer, ask_api_versions

__all__ = ["client_options", "refusal", "tls_context", "wait_for_broker"]

_CREDENTIALS = "sasl_username/sasl_password"


def _close_socket_of_failed_connect() -> None:
    """Make kafka-python close the socket of a connection attempt that failed.

    kafka-python 3.0.12's ``KafkaNetSocket.sock_connect`` raises when the connection is refused or
    times out without closing the socket it was given: a client whose broker is down leaks one
    socket per reconnect attempt (a ResourceWarning each, an error under our tests). An emitter
    riding out a broker outage makes many attempts, so the socket is closed here on any failure.
    """
    original = KafkaNetSocket.sock_connect
    if getattr(original, "_lineage_closes", False):
        return

    @functools.wraps(original)
    async def sock_connect(self: Any, net: Any, sock: socket.socket, sockaddr: Any, timeout_at: Any = None) -> Any:
        try:
            return await original(self, net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:
            sock.close()
            raise

    sock_connect._lineage_closes = True  # type: ignore[attr-defined]
    KafkaNetSocket.sock_connect = sock_connect


_close_socket_of_failed_connect()


def client_options(settings: Settings, *, client_suffix: str = "") -> dict[str, Any]:
    """Options every kafka-python client takes from our settings: where the brokers are, who we are."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": settings.client_id + client_suffix,
        "bootstrap_timeout_ms": int(settings.connect_timeout_s * 1000),
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol.startswith("SASL_"):
        # kafka-python takes the SCRAM credentials under the "plain" names too
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password
    context = tls_context(settings)
    if context is not None:
        options["ssl_context"] = context
    return options


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL/SASL_SSL (None otherwise): our CA file or the system's, TLS 1.2+.

    Built here rather than by kafka-python so the same context serves our own handshake probe in
    ``wait_for_broker``, and a bad file fails as a ``ConfigurationError`` naming the setting.
    """
    if not settings.security_protocol.endswith("SSL"):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.ssl_check_hostname
    if settings.ssl_cafile is not None:
        try:
            context.load_verify_locations(cafile=str(settings.ssl_cafile))
        except (OSError, ssl.SSLError) as exc:
            detail = f"cannot load CA certificates from {settings.ssl_cafile}: {exc}"
            raise ConfigurationError("ssl_cafile", detail) from None
    else:
        context.load_default_certs()
    if settings.ssl_certfile is not None:
        keyfile = str(settings.ssl_keyfile) if settings.ssl_keyfile is not None else None
        try:
            context.load_cert_chain(certfile=str(settings.ssl_certfile), keyfile=keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError("ssl_certfile", f"cannot load the client certificate or its key: {exc}") from None
    return context


def wait_for_broker(settings: Settings) -> None:
    """Wait until some bootstrap server accepts a TCP connection, or raise ``BrokerUnavailableError``.

    Checked before kafka-python is involved: its bootstrap loop leaks a socket per failed attempt
    (3.0.12), and a refused port should fail with our message, not after its retries. With TLS the
    first server that answers is also asked for a handshake: kafka-python turns an untrusted
    certificate into a retried connection error and, at the end of the bound, "Unable to bootstrap",
    losing the reason; ours says at once which setting to fix.
    """
    context = tls_context(settings)
    deadline = time.monotonic() + settings.connect_timeout_s
    last = "no bootstrap server given"
    backoff = 0.05
    while True:
        for server in settings.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            remaining = deadline - time.monotonic()
            try:
                address = (host.strip("[]") or "localhost", int(port))
                sock = socket.create_connection(address, timeout=max(remaining, 0.01))
            except (OSError, ValueError) as exc:
                last = f"{server.strip()}: {exc}"
                continue
            try:
                if context is not None:
                    sock = _check_tls(context, sock, address, server.strip(), settings.security_protocol)
                elif (answer := ask_api_versions(sock, max(deadline - time.monotonic(), 0.01))) is not Answer.KAFKA:
                    if answer is Answer.TLS:
                        raise _mismatch(settings.security_protocol, server.strip(), "TLS", "SSL or SASL_SSL")
                    last = f"{server.strip()}: no answer to a Kafka request ({answer.value})"
                    continue
                if settings.security_protocol.startswith("SASL_"):
                    _check_credentials(settings, sock, server.strip())
                return
            except OSError as exc:  # cut short without a verdict: a transient, like a refused connect
                last = f"{server.strip()}: {exc}"
            finally:
                sock.close()
        if time.monotonic() + backoff >= deadline:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, last)
        time.sleep(backoff)
        backoff = min(backoff * 2, 1.0)


def _mismatch(protocol: str, server: str, heard: str, fitting: str) -> ConfigurationError:
    """The error for a listener speaking another protocol than ``security_protocol``: our side is likely wrong."""
    return ConfigurationError(
        "security_protocol",
        f"is {protocol} but the listener at {server} speaks {heard}; set security_protocol to {fitting}, "
        "or give the bootstrap server of the broker's matching listener",
    )


def _check_tls(
    context: ssl.SSLContext, sock: socket.socket, address: tuple[str, int], server: str, protocol: str
) -> ssl.SSLSocket:
    """Handshake on ``sock`` and return the TLS socket; an untrusted or misnamed certificate is terminal.

    A handshake that fails for another reason is asked why: if the listener answers a plaintext
    Kafka request, ``security_protocol`` asks TLS of a plaintext listener, and the error says so.
    """
    try:
        return context.wrap_socket(sock, server_hostname=address[0])  # wrapping a connected socket shakes hands
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        setting = "ssl_check_hostname" if "mismatch" in (exc.verify_message or "").lower() else "ssl_cafile"
        raise AuthenticationError(
            setting, f"the certificate of {server} is not trusted: {exc.verify_message or exc.reason}"
        ) from None
    except ssl.SSLError as exc:
        sock.close()
        if _plaintext_kafka(address):
            raise _mismatch(protocol, server, "plaintext Kafka", "PLAINTEXT or SASL_PLAINTEXT") from None
        raise AuthenticationError("security_protocol", f"TLS handshake with {server} failed: {exc.reason}") from None


def _plaintext_kafka(address: tuple[str, int]) -> bool:
    """Whether ``address`` answers a plaintext Kafka request: asked only after a TLS handshake failed."""
    try:
        with socket.create_connection(address, timeout=5) as plain:
            return ask_api_versions(plain, 5) is Answer.KAFKA
    except OSError:
        return False


def _check_credentials(settings: Settings, sock: socket.socket, server: str) -> None:
    """Run the SASL exchange once on ``sock``; refused credentials raise ``AuthenticationError``.

    Why our own exchange: the broker answers a failed login with an error response and closes the
    connection at once; kafka-python 3.0.12 drops the bytes received together with the close
    (``_read_from_sock`` aborts before handing them on), so it reports only "socket disconnected",
    retries until its bootstrap bound and says "Unable to bootstrap". We use its protocol parser and
    its SASL mechanisms, so the exchange is the one its clients then perform.
    """
    parser = KafkaProtocol(client_id=settings.client_id + "-probe")

    def call(request: Any) -> Any:
        parser.send_request(request)
        sock.sendall(parser.send_bytes())
        while True:
            data = sock.recv(65536)
            if not data:
                raise _ClosedDuringLogin
            responses = parser.receive_bytes(data)
            if responses:
                return responses[0][1]

    handshake = SaslHandshakeRequest(mechanism=settings.sasl_mechanism)
    handshake.API_VERSION = 1
    try:
        response = call(handshake)
    except _ClosedDuringLogin:
        raise AuthenticationError(
            "security_protocol",
            f"the broker at {server} closed the connection at the SASL handshake "
            f"(does its listener use {settings.security_protocol}?)",
        ) from None
    try:
        if response.error_code != 0 or settings.sasl_mechanism not in response.mechanisms:
            raise AuthenticationError(
                "sasl_mechanism",
                f"the broker at {server} does not accept {settings.sasl_mechanism}; it offers "
                f"{', '.join(response.mechanisms) or 'none'}",
            )
        mechanism = get_sasl_mechanism(settings.sasl_mechanism)(
            host=server.rpartition(":")[0],
            security_protocol=settings.security_protocol,
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
        while not mechanism.is_done():
            request = SaslAuthenticateRequest(mechanism.auth_bytes())
            request.API_VERSION = 1
            answer = call(request)
            if answer.error_code != 0:
                raise _ClosedDuringLogin
            mechanism.receive(answer.auth_bytes)
        if not mechanism.is_authenticated():
            raise _ClosedDuringLogin
    except _ClosedDuringLogin:
        raise AuthenticationError(
            _CREDENTIALS,
            f"the broker at {server} refused user {settings.sasl_username!r} with {settings.sasl_mechanism} "
            "(unknown user or wrong password)",
        ) from None


class _ClosedDuringLogin(Exception):
    """The broker ended the SASL exchange: it refused the credentials."""


def refusal(
    exc: BaseException,
    settings: Settings,
    *,
    operation: str = "use",
    topic: str | None = None,
    group: str | None = None,
) -> AuthenticationError | AuthorizationError | None:
    """Our error for a kafka-python authentication or authorisation failure, or None for any other error.

    ``operation`` and ``topic``/``group`` say what we were doing, so an ACL refusal reads
    "not authorised to write topic X". The password is never part of the message.
    """
    if isinstance(exc, kafka.errors.SaslAuthenticationFailedError):
        return AuthenticationError(
            _CREDENTIALS,
            f"the broker at {settings.bootstrap_servers} refused user {settings.sasl_username!r} "
            f"with {settings.sasl_mechanism} (unknown user or wrong password)",
        )
    if isinstance(exc, kafka.errors.TopicAuthorizationFailedError):
        return AuthorizationError(operation, f"topic {topic or settings.topic}", f"as user {settings.sasl_username!r}")
    if isinstance(exc, kafka.errors.GroupAuthorizationFailedError):
        return AuthorizationError("join", f"group {group}", f"as user {settings.sasl_username!r}")
    if isinstance(exc, kafka.errors.AuthorizationError):
        return AuthorizationError(operation, "the cluster", f"{type(exc).__name__}, as user {settings.sasl_username!r}")
    return None
