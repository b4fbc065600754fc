"""The Kafka probe: a listener that accepts connections but never answers is not a broker."""

from __future__ import annotations

import socket

from lineage.transport.probe import Answer, ask_api_versions, kafka_answers


def test_a_listener_that_accepts_but_never_answers_is_not_kafka() -> None:
    """A socket whose backlog completes connects (as a frozen JVM's does) is reported silent, not up."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert not kafka_answers("127.0.0.1", port, timeout_s=0.5)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            assert ask_api_versions(sock, 0.5) is Answer.SILENT


def test_a_tls_alert_is_told_apart_from_a_closed_connection() -> None:
    """A listener answering with a TLS alert is classed TLS; one closing without a word is CLOSED."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        for reply, expected in ((b"\x15\x03\x03\x00\x02\x02P", Answer.TLS), (b"", Answer.CLOSED)):
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                peer, _ = server.accept()
                with peer:
                    peer.sendall(reply)
                    peer.shutdown(socket.SHUT_WR)
                    assert ask_api_versions(sock, 5) is expected
