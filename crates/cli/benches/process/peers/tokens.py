"""Token figures of MSAL for Python and azure-identity, for the process bench (issue 25).

`python tokens.py cache-hit ROUNDS CALLS`: one MSAL confidential client gets a token, then
ROUNDS rounds of CALLS `acquire_token_for_client` calls, each answered from MSAL's in-memory
token cache (checked: `token_source` is `cache`); prints the nanoseconds per call of each
round. `python tokens.py cold RUNS`: RUNS times a new MSAL client and a new azure-identity
`ClientSecretCredential` each get one token from the emulator (checked: from the identity
provider); prints each one's nanoseconds. Output: one JSON object. The emulator's address,
tenant, app and CA come in EMULATOR_* variables; any failure raises (non-zero exit).
"""

import json
import os
import sys
import time

import msal
from azure.identity import ClientSecretCredential

env = os.environ
BASE = env["EMULATOR_BASE"]
TENANT = env["EMULATOR_TENANT"]
CA = env["EMULATOR_CA_BUNDLE"]
CLIENT_ID = env["EMULATOR_CLIENT_ID"]
SECRET = env["EMULATOR_CLIENT_SECRET"]
SCOPE = f"{BASE}/.default"


def msal_app():
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=SECRET,
        authority=f"{BASE}/{TENANT}",
        instance_discovery=False,
        verify=CA,
    )


def token(result, source):
    if "access_token" not in result:
        raise SystemExit(f"no token: {json.dumps(result)}")
    if result.get("token_source") != source:
        raise SystemExit(f"expected a token from {source}, got {result.get('token_source')}")


def cache_hit(rounds, calls):
    app = msal_app()
    token(app.acquire_token_for_client(scopes=[SCOPE]), "identity_provider")
    per_call = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for _ in range(calls):
            result = app.acquire_token_for_client(scopes=[SCOPE])
        per_call.append((time.perf_counter_ns() - started) / calls)
        token(result, "cache")
    return {"msal_python": per_call}


def cold(runs):
    figures = {"msal_python": [], "azure_identity": []}
    for _ in range(runs):
        started = time.perf_counter_ns()
        app = msal_app()
        result = app.acquire_token_for_client(scopes=[SCOPE])
        figures["msal_python"].append(time.perf_counter_ns() - started)
        token(result, "identity_provider")

        started = time.perf_counter_ns()
        credential = ClientSecretCredential(
            TENANT, CLIENT_ID, SECRET, authority=BASE, disable_instance_discovery=True
        )
        access = credential.get_token(SCOPE)
        figures["azure_identity"].append(time.perf_counter_ns() - started)
        if not access.token:
            raise SystemExit("azure-identity: no token")
        credential.close()
    return figures


mode = sys.argv[1]
if mode == "cache-hit":
    print(json.dumps(cache_hit(int(sys.argv[2]), int(sys.argv[3]))))
elif mode == "cold":
    print(json.dumps(cold(int(sys.argv[2]))))
else:
    raise SystemExit(f"unknown mode {mode}")
