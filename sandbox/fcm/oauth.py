"""A local Google OAuth 2.0 token endpoint (JWT bearer grant, RFC 7523).

google-auth signs the service-account assertion with `aud=https://oauth2.googleapis.com/token`
whatever `token_uri` the key file names, so that audience is accepted alongside our own URL.
Signatures are verified when the key id was registered (the runner registers the keys it
writes); unknown key ids are accepted unless `strict_keys` is on, so any real key file works.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPES = {
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
}
_MAX_ASSERTION_LIFETIME_S = 3600
_CLOCK_SKEW_S = 300


class GrantError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class IssuedToken:
    expires_at: float
    client_email: str
    project_id: str | None


@dataclass(slots=True)
class OAuthState:
    strict_keys: bool = False
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    issued: dict[str, IssuedToken] = field(default_factory=dict)

    def register_key(self, key_id: str, public_pem: bytes) -> None:
        key = serialization.load_pem_public_key(public_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("service account keys are RSA keys")
        self.keys[key_id] = key

    def check_bearer(self, header: str | None) -> IssuedToken | None:
        if not header or not header.startswith("Bearer "):
            return None
        issued = self.issued.get(header[len("Bearer ") :].strip())
        if issued is None or issued.expires_at < time.time():
            return None
        return issued


def _b64url(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise GrantError("invalid_grant", "Invalid JWT: bad encoding.") from exc


def project_of(client_email: str) -> str | None:
    """`name@PROJECT.iam.gserviceaccount.com` → PROJECT."""
    _, _, domain = client_email.partition("@")
    project, _, rest = domain.partition(".")
    return project if rest == "iam.gserviceaccount.com" else None


def verify_assertion(state: OAuthState, assertion: str, own_token_url: str) -> dict[str, Any]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise GrantError("invalid_grant", "Invalid JWT: Token must be a short-lived token.")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
    except ValueError as exc:
        raise GrantError("invalid_grant", "Invalid JWT: not JSON.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise GrantError("invalid_grant", "Invalid JWT: not JSON objects.")
    if header.get("alg") != "RS256":
        raise GrantError("invalid_grant", "Invalid JWT: only RS256 is accepted.")
    key = state.keys.get(str(header.get("kid")))
    if key is None and state.strict_keys:
        raise GrantError("invalid_grant", "Invalid JWT Signature.")
    if key is not None:
        try:
            key.verify(
                _b64url(parts[2]),
                f"{parts[0]}.{parts[1]}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature as exc:
            raise GrantError("invalid_grant", "Invalid JWT Signature.") from exc
    if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, own_token_url):
        raise GrantError("invalid_grant", "Invalid JWT: aud is not the token endpoint.")
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise GrantError("invalid_grant", "Invalid JWT: iat and exp are required.")
    if exp < now - _CLOCK_SKEW_S or iat > now + _CLOCK_SKEW_S:
        raise GrantError(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token and in a reasonable "
            "timeframe. Check your iat and exp values.",
        )
    if exp - iat > _MAX_ASSERTION_LIFETIME_S:
        raise GrantError("invalid_grant", "Invalid JWT: lifetime longer than one hour.")
    if not isinstance(claims.get("iss"), str) or "@" not in claims["iss"]:
        raise GrantError("invalid_grant", "Invalid JWT: iss must be the service account email.")
    scopes = set(str(claims.get("scope", "")).split())
    if not scopes & FCM_SCOPES:
        raise GrantError("invalid_scope", "No FCM scope requested.")
    return claims
