"""A whole-table export with Microsoft's Python Dataverse SDK (PowerPlatform-Dataverse-Client):
`client.records.get("account", select=..., page_size=N)` page by page, written as JSON lines
like `d365 get --all -o jsonl --out FILE`: `python export_sdk.py FILE PAGE_SIZE`. Prints the
row count. Run by the process bench's export job (issue 25); the emulator comes in
EMULATOR_* variables, its CA in EMULATOR_CA_BUNDLE (and REQUESTS_CA_BUNDLE)."""

import json
import os
import sys

from azure.identity import ClientSecretCredential
from PowerPlatform.Dataverse.client import DataverseClient

env = os.environ
base = env["EMULATOR_BASE"]
file, page_size = sys.argv[1], int(sys.argv[2])
credential = ClientSecretCredential(
    env["EMULATOR_TENANT"],
    env["EMULATOR_CLIENT_ID"],
    env["EMULATOR_CLIENT_SECRET"],
    authority=base,
    disable_instance_discovery=True,
)
rows = 0
with DataverseClient(base, credential) as client, open(file, "w", encoding="utf-8") as out:
    for page in client.records.get(
        "account", select=env["EXPORT_SELECT"].split(","), page_size=page_size
    ):
        for record in page:
            out.write(json.dumps(record.to_dict()))
            out.write("\n")
            rows += 1
print(rows)
