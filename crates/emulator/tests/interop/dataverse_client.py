"""Drives Microsoft's Python Dataverse SDK (PowerPlatform-Dataverse-Client), unmodified, against
the d365 emulator over https, with tokens from azure-identity.

Run by crates/emulator/tests/it/interop_dataverse_client.rs, which starts the emulator with
https and passes everything through environment variables (the CA through REQUESTS_CA_BUNDLE,
which the SDK's `requests` session honours). Tokens: ClientSecretCredential,
CertificateCredential and UsernamePasswordCredential. The scenario: table and column metadata,
create, read (with single- and collection-valued `$expand`), update, a paged query, a bulk create
(CreateMultiple) and update (UpdateMultiple), a batch with a change set, delete and a bulk delete
(BulkDelete). The SDK has no WhoAmI; who is calling is read back from `_createdby_value`.

Prints one JSON object with what each step saw; the Rust test asserts on it. Any failure raises,
so the process exits non-zero with a traceback. Secrets are read from the environment and never
printed.
"""

import json
import os
import sys
import urllib.parse
import warnings

from azure.core.pipeline.transport import RequestsTransport
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    UsernamePasswordCredential,
)
from PowerPlatform.Dataverse.client import DataverseClient

env = os.environ
BASE = env["EMULATOR_BASE"]
TENANT = env["EMULATOR_TENANT"]
CA = env["EMULATOR_CA_BUNDLE"]

# UsernamePasswordCredential is deprecated (no MFA) but still shipped; the warning is noise here.
warnings.simplefilter("ignore", DeprecationWarning)


class EmulatorPortTransport(RequestsTransport):
    """MSAL (inside azure-identity) builds the user realm URL from the authority host without its
    port (https://HOST/common/userrealm/...); put the emulator's port back so the call reaches it.
    `transport` is azure-core's documented hook for the HTTP layer, not a change to either
    library."""

    def send(self, request, **kwargs):
        base = urllib.parse.urlsplit(BASE)
        parts = urllib.parse.urlsplit(request.url)
        if parts.hostname == base.hostname and parts.port is None:
            request.url = urllib.parse.urlunsplit(parts._replace(netloc=base.netloc))
        return super().send(request, **kwargs)


def common():
    return {"authority": BASE, "disable_instance_discovery": True, "connection_verify": CA}


credentials = {
    "secret": ClientSecretCredential(
        TENANT, env["EMULATOR_CLIENT_ID"], env["EMULATOR_CLIENT_SECRET"], **common()
    ),
    "certificate": CertificateCredential(
        TENANT,
        env["EMULATOR_CERT_CLIENT_ID"],
        certificate_path=env["EMULATOR_CERT_AND_KEY"],
        **common(),
    ),
    "password": UsernamePasswordCredential(
        env["EMULATOR_PUBLIC_CLIENT_ID"],
        env["EMULATOR_USERNAME"],
        env["EMULATOR_PASSWORD"],
        tenant_id=TENANT,
        transport=EmulatorPortTransport(connection_verify=CA),
        **common(),
    ),
}

report = {"identities": {}}

# Each credential: create a record and read back who created it (the SDK has no WhoAmI).
for name, credential in credentials.items():
    with DataverseClient(BASE, credential) as client:
        record_id = client.records.create("account", {"name": f"PPDC {name}"})
        record = client.records.retrieve("account", record_id, select=["name", "_createdby_value"])
        report["identities"][name] = record["_createdby_value"]
        client.records.delete("account", record_id)

with DataverseClient(BASE, credentials["secret"]) as client:
    # Metadata: the table (EntityDefinitions by LogicalName), its columns, one column.
    table = client.tables.get("account")
    report["table"] = {
        "entity_set_name": table.entity_set_name,
        "primary_id_attribute": table.primary_id_attribute,
        "primary_name_attribute": table.primary_name_attribute,
        "metadata_id": table.metadata_id,
    }
    columns = client.tables.list_columns("account", select=["LogicalName", "AttributeType"])
    report["columns"] = sorted(c["LogicalName"] for c in columns)
    column = client.tables.get_column("account", "name")
    report["column"] = {"LogicalName": column["LogicalName"], "AttributeType": column["AttributeType"]}
    report["tables"] = sorted(
        t["LogicalName"] for t in client.tables.list(select=["LogicalName", "EntitySetName"])
    )

    # Create, read, update (a contact as the account's primary contact, another as its child).
    contact_id = client.records.create("contact", {"firstname": "Ada", "lastname": "Lovelace"})
    account_id = client.records.create(
        "account",
        {
            "name": "PPDC account",
            "accountnumber": "PPDC-1",
            "primarycontactid@odata.bind": f"/contacts({contact_id})",
        },
    )
    child_id = client.records.create(
        "contact",
        {"lastname": "Babbage", "parentcustomerid_account@odata.bind": f"/accounts({account_id})"},
    )
    record = client.records.retrieve("account", account_id, select=["name", "accountnumber"])
    report["created"] = {"id": account_id, "name": record["name"], "accountnumber": record["accountnumber"]}
    client.records.update("account", account_id, {"telephone1": "555-0100", "name": "PPDC account (updated)"})
    record = client.records.retrieve("account", account_id, select=["name", "telephone1"])
    report["updated"] = {"name": record["name"], "telephone1": record["telephone1"]}

    # $expand, single-valued (primarycontactid) and collection-valued (contact_customer_accounts).
    record = client.records.retrieve(
        "account",
        account_id,
        select=["name"],
        expand=["primarycontactid($select=fullname)", "contact_customer_accounts($select=lastname)"],
    )
    report["expand"] = {
        "primarycontact": record["primarycontactid"]["fullname"],
        "primarycontactid": record["primarycontactid"]["contactid"],
        "contactid": contact_id,
        "children": [c["lastname"] for c in record["contact_customer_accounts"]],
        "childid": child_id,
    }
    listed = client.records.list(
        "account",
        filter=f"accountid eq {account_id}",
        select=["name"],
        expand=["primarycontactid($select=lastname)"],
    )
    report["expand"]["listed"] = [r["primarycontactid"]["lastname"] for r in listed]

    # Bulk create (CreateMultiple) and bulk update (UpdateMultiple).
    ids = client.records.create(
        "account", [{"name": f"PPDC bulk {i:02}", "accountnumber": f"PPDC-B{i:02}"} for i in range(7)]
    )
    client.records.update("account", ids, {"description": "bulk updated"})
    report["bulk"] = {"created": len(ids), "distinct": len(set(ids))}

    # A paged query: 7 rows, 3 a page, following @odata.nextLink.
    pages = list(
        client.records.list_pages(
            "account",
            filter="startswith(name,'PPDC bulk')",
            select=["name", "description"],
            orderby=["name asc"],
            page_size=3,
        )
    )
    rows = [r for page in pages for r in page]
    report["paging"] = {
        "pages": [len(page) for page in pages],
        "names": [r["name"] for r in rows],
        "descriptions": sorted({r["description"] for r in rows}),
    }

    # Formatted values through Prefer: odata.include-annotations.
    record = client.records.retrieve(
        "account",
        account_id,
        select=["statecode"],
        include_annotations="OData.Community.Display.V1.FormattedValue",
    )
    report["formatted"] = record["statecode@OData.Community.Display.V1.FormattedValue"]

    # A batch: a change set (create an account, a contact bound to it by Content-ID, update the
    # account) and a read outside it.
    batch = client.batch.new()
    with batch.changeset() as changeset:
        ref = changeset.records.create("account", {"name": "PPDC batch account"})
        contact_ref = changeset.records.create(
            "contact", {"lastname": "Batch", "parentcustomerid_account@odata.bind": ref}
        )
        changeset.records.update("account", ref, {"primarycontactid@odata.bind": contact_ref})
    batch.records.list("contact", filter="lastname eq 'Batch'", select=["lastname"])
    result = batch.execute()
    batch_account = result.entity_ids[0]
    linked = client.records.retrieve("account", batch_account, select=["_primarycontactid_value"])
    report["batch"] = {
        "statuses": [r.status_code for r in result.responses],
        "entity_ids": len(result.entity_ids),
        "has_errors": result.has_errors,
        "contacts": [c["lastname"] for c in (result.responses[-1].data or {}).get("value", [])],
        "primarycontact": linked["_primarycontactid_value"],
        "contactid": result.entity_ids[1],
    }

    # Delete one, then the bulk-created ones (a list of ids is BulkDelete, an async job).
    client.records.delete("account", account_id)
    report["deleted"] = client.records.retrieve("account", account_id) is None
    job_id = client.records.delete("account", ids)
    remaining = client.records.list("account", filter="startswith(name,'PPDC bulk')", select=["name"])
    report["bulk_delete"] = {"job_id": job_id, "remaining": len(list(remaining))}

json.dump(report, sys.stdout)
