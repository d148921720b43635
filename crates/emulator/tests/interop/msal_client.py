"""Gets tokens from the d365 emulator with unmodified MSAL for Python and azure-identity.

Run by crates/emulator/tests/interop_python.rs, which starts the emulator with https and passes
everything through environment variables. Prints one JSON object: {"name": access_token, ...}.
Any failure raises, so the process exits non-zero with a traceback.
"""

import json
import os
import sys
import urllib.parse

import msal
import requests
from azure.identity import CertificateCredential, ClientSecretCredential

env = os.environ
BASE = env["EMULATOR_BASE"]
TENANT = env["EMULATOR_TENANT"]
CA = env["EMULATOR_CA_BUNDLE"]
SCOPE = env["EMULATOR_SCOPE"]
AUTHORITY = f"{BASE}/{TENANT}"

tokens = {}


def token_or_raise(name, result):
    if "access_token" not in result:
        raise SystemExit(f"{name}: no token: {json.dumps(result)}")
    tokens[name] = result["access_token"]


# MSAL, client credentials with a secret.
app = msal.ConfidentialClientApplication(
    env["EMULATOR_CLIENT_ID"],
    client_credential=env["EMULATOR_CLIENT_SECRET"],
    authority=AUTHORITY,
    instance_discovery=False,
    verify=CA,
)
token_or_raise("msal_secret", app.acquire_token_for_client(scopes=[SCOPE]))

# MSAL, client credentials with a certificate: PS256 + x5t#S256 (public certificate given)
# and RS256 + x5t (SHA-1 thumbprint only).
with open(env["EMULATOR_CERT_KEY"], encoding="ascii") as f:
    private_key = f.read()
with open(env["EMULATOR_CERT"], encoding="ascii") as f:
    certificate = f.read()
for name, credential in [
    ("msal_certificate_ps256", {"private_key": private_key, "public_certificate": certificate}),
    ("msal_certificate_rs256", {"private_key": private_key, "thumbprint": env["EMULATOR_CERT_THUMBPRINT"]}),
]:
    cert_app = msal.ConfidentialClientApplication(
        env["EMULATOR_CERT_CLIENT_ID"],
        client_credential=credential,
        authority=AUTHORITY,
        instance_discovery=False,
        verify=CA,
    )
    token_or_raise(name, cert_app.acquire_token_for_client(scopes=[SCOPE]))


class EmulatorPortSession(requests.Session):
    """MSAL builds the user realm URL from the authority host without its port
    (https://HOST/common/userrealm/...); put the emulator's port back so the call reaches it.
    This is MSAL's documented `http_client` hook, not a change to MSAL."""

    def request(self, method, url, *args, **kwargs):
        base = urllib.parse.urlsplit(BASE)
        parts = urllib.parse.urlsplit(url)
        if parts.hostname == base.hostname and parts.port is None:
            url = urllib.parse.urlunsplit(parts._replace(netloc=base.netloc))
        return super().request(method, url, *args, **kwargs)


session = EmulatorPortSession()
session.verify = CA

# MSAL, ROPC with a public client (user realm → Managed → password grant).
public = msal.PublicClientApplication(
    env["EMULATOR_PUBLIC_CLIENT_ID"],
    authority=AUTHORITY,
    instance_discovery=False,
    http_client=session,
)
delegated_scope = SCOPE.replace("/.default", "/user_impersonation")
result = public.acquire_token_by_username_password(
    env["EMULATOR_USERNAME"], env["EMULATOR_PASSWORD"], scopes=[delegated_scope]
)
token_or_raise("msal_ropc", result)
if "refresh_token" not in result:
    raise SystemExit("msal_ropc: MSAL asks for offline_access, a refresh token was expected")
# The account is in MSAL's cache (from client_info / id_token): silent refresh works.
accounts = public.get_accounts(username=env["EMULATOR_USERNAME"])
if not accounts:
    raise SystemExit("msal_ropc: no account cached")
silent = public.acquire_token_silent(
    [delegated_scope], account=accounts[0], force_refresh=True
)
token_or_raise("msal_refresh", silent or {})

# azure-identity, client secret and certificate.
credential = ClientSecretCredential(
    TENANT,
    env["EMULATOR_CLIENT_ID"],
    env["EMULATOR_CLIENT_SECRET"],
    authority=BASE,
    disable_instance_discovery=True,
    connection_verify=CA,
)
tokens["azure_identity_secret"] = credential.get_token(SCOPE).token

credential = CertificateCredential(
    TENANT,
    env["EMULATOR_CERT_CLIENT_ID"],
    certificate_path=env["EMULATOR_CERT_AND_KEY"],
    authority=BASE,
    disable_instance_discovery=True,
    connection_verify=CA,
)
tokens["azure_identity_certificate"] = credential.get_token(SCOPE).token

json.dump(tokens, sys.stdout)
