"""One WhoAmI, as a Python script does it with azure-identity and requests: a token from a
ClientSecretCredential, then GET WhoAmI. Run whole by the process bench's start-up job
(issue 25); the emulator comes in EMULATOR_* variables, its CA in EMULATOR_CA_BUNDLE (and
REQUESTS_CA_BUNDLE, which azure-identity's transport reads)."""

import os

import requests
from azure.identity import ClientSecretCredential

env = os.environ
base = env["EMULATOR_BASE"]
credential = ClientSecretCredential(
    env["EMULATOR_TENANT"],
    env["EMULATOR_CLIENT_ID"],
    env["EMULATOR_CLIENT_SECRET"],
    authority=base,
    disable_instance_discovery=True,
)
token = credential.get_token(f"{base}/.default").token
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
