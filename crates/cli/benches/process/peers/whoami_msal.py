"""One WhoAmI, as a Python script does it with MSAL for Python and requests: a token by
client secret, then GET WhoAmI. Run whole by the process bench's start-up job (issue 25);
the emulator comes in EMULATOR_* variables, its CA in EMULATOR_CA_BUNDLE."""

import os

import msal
import requests

env = os.environ
base = env["EMULATOR_BASE"]
app = msal.ConfidentialClientApplication(
    env["EMULATOR_CLIENT_ID"],
    client_credential=env["EMULATOR_CLIENT_SECRET"],
    authority=f"{base}/{env['EMULATOR_TENANT']}",
    instance_discovery=False,
    verify=env["EMULATOR_CA_BUNDLE"],
)
token = app.acquire_token_for_client(scopes=[f"{base}/.default"])["access_token"]
answer = requests.get(
    f"{base}/api/data/v9.2/WhoAmI",
    headers={
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
    },
    verify=env["EMULATOR_CA_BUNDLE"],
    timeout=60,
)
answer.raise_for_status()
print(answer.json()["UserId"])
