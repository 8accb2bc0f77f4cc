"""SASL mechanisms the client offers (RFC 4616 PLAIN, RFC 4505 ANONYMOUS, RFC 4422 EXTERNAL)."""

from __future__ import annotations

__all__ = ["SaslAnonymous", "SaslExternal", "SaslMechanism", "SaslPlain"]


class SaslMechanism:
    """A client-side SASL mechanism: its name and initial response."""

    name: str = ""

    def initial_response(self) -> bytes | None:
        """The bytes sent in sasl-init."""
        return None

    def respond(self, challenge: bytes) -> bytes:
        """The answer to a server challenge (none of our mechanisms expects one)."""
        return b""


class SaslPlain(SaslMechanism):
    """Username and password. The password is never part of the repr."""

    name = "PLAIN"
    __slots__ = ("_password", "authzid", "username")

    def __init__(self, username: str, password: str, authzid: str = "") -> None:
        self.username = username
        self._password = password
        self.authzid = authzid

    def initial_response(self) -> bytes:
        return b"\x00".join(
            part.encode("utf-8") for part in (self.authzid, self.username, self._password)
        )

    def __repr__(self) -> str:
        return f"SaslPlain(username={self.username!r}, password='***')"


class SaslAnonymous(SaslMechanism):
    """No credentials; the optional trace string identifies the client."""

    name = "ANONYMOUS"

    def __init__(self, trace: str = "") -> None:
        self.trace = trace

    def initial_response(self) -> bytes:
        return self.trace.encode("utf-8")


class SaslExternal(SaslMechanism):
    """Credentials from the TLS layer (a client certificate)."""

    name = "EXTERNAL"

    def __init__(self, authzid: str = "") -> None:
        self.authzid = authzid

    def initial_response(self) -> bytes:
        return self.authzid.encode("utf-8")
