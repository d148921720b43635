"""A bulk create with Microsoft's Python Dataverse SDK (PowerPlatform-Dataverse-Client):
`client.records.create("account", rows)` (CreateMultiple) for each CHUNK rows of a JSON
lines file, one after another — the SDK sends a list as one request and does not chunk:
`python bulk_sdk.py FILE CHUNK`. Prints the number of ids returned. Run by the process
bench's bulk job (issue 25); the emulator comes in EMULATOR_* variables, its CA in
REQUESTS_CA_BUNDLE."""

import json
import os
import sys

from azure.identity import ClientSecretCredential
from PowerPlatform.Dataverse.client import DataverseClient

env = os.environ
base = env["EMULATOR_BASE"]
file, chunk = sys.argv[1], int(sys.argv[2])
credential = ClientSecretCredential(
    env["EMULATOR_TENANT"],
    env["EMULATOR_CLIENT_ID"],
    env["EMULATOR_CLIENT_SECRET"],
    authority=base,
    disable_instance_discovery=True,
)
created = 0
with DataverseClient(base, credential) as client, open(file, encoding="utf-8") as rows:
    batch = []
    for line in rows:
        if line.strip():
            batch.append(json.loads(line))
        if len(batch) >= chunk:
            created += len(client.records.create("account", batch))
            batch = []
    if batch:
        created += len(client.records.create("account", batch))
print(created)
