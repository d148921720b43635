// Drives the unmodified npm packages `dynamics-web-api` and `@azure/msal-node` against the d365
// emulator over https. msal-node gets the tokens: ConfidentialClientApplication with a client
// secret and with a certificate (SHA-256 thumbprint, PS256; SHA-1 thumbprint, RS256), and
// PublicClientApplication with a user's password. DynamicsWebApi then runs the scenario: WhoAmI
// under each identity, create, retrieve (by id and alternate key), update, `$expand`
// (single- and collection-valued), formatted values, metadata (retrieveEntity, retrieveEntities,
// retrieveAttributes with a cast, retrieveAttribute), paging (retrieveMultiple with maxPageSize
// and nextLink, and retrieveAll), a bulk create (the bound action CreateMultiple through
// callAction: 2.5.0 has no createMultiple helper), a batch with a change set that uses Content-ID
// references, delete, and a 404.
//
// Input: D365_INTEROP_DIR (where the packages are installed, under node/node_modules),
// EMULATOR_BASE (the organization URL), EMULATOR_AUTHORITY (https://HOST:PORT/TENANT),
// EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET, EMULATOR_CERT_CLIENT_ID, EMULATOR_CERT,
// EMULATOR_CERT_KEY, EMULATOR_PUBLIC_CLIENT_ID, EMULATOR_USERNAME, EMULATOR_PASSWORD; the
// emulator's CA comes through NODE_EXTRA_CA_CERTS. Output: one JSON object on stdout with what
// each step saw; the Rust test asserts on it. Secrets are never printed. Any failure exits
// non-zero with the error on stderr.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = path.join(process.env.D365_INTEROP_DIR, 'node', 'node_modules');

// Imports an installed package by its `exports` (ESM entry), as `import 'name'` would from a
// project that depends on it; the script itself lives outside that npm prefix.
async function importPackage(name) {
  const packageDir = path.join(modules, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  const root = manifest.exports?.['.'] ?? manifest.exports;
  const entry =
    root?.default?.import ?? root?.import?.default ?? root?.import ?? manifest.module ?? manifest.main;
  return import(pathToFileURL(path.join(packageDir, entry)).href);
}

const { DynamicsWebApi } = await importPackage('dynamics-web-api');
const msal = await importPackage('@azure/msal-node');

const env = process.env;
const base = env.EMULATOR_BASE;
const authority = env.EMULATOR_AUTHORITY;
// The emulator is not a Microsoft cloud: naming it a known authority turns instance discovery
// (a call to login.microsoftonline.com) off, as for B2C or ADFS.
const knownAuthorities = [new URL(authority).host];
const scopes = [`${base}/.default`];

const certificatePem = fs.readFileSync(env.EMULATOR_CERT, 'utf8');
const privateKey = fs.readFileSync(env.EMULATOR_CERT_KEY, 'utf8');
const certificate = new crypto.X509Certificate(certificatePem);
const hex = (fingerprint) => fingerprint.replaceAll(':', '');

const tokenSources = {
  secret: () =>
    new msal.ConfidentialClientApplication({
      auth: { clientId: env.EMULATOR_CLIENT_ID, authority, knownAuthorities, clientSecret: env.EMULATOR_CLIENT_SECRET },
    }).acquireTokenByClientCredential({ scopes }),
  certificateSha256: () =>
    new msal.ConfidentialClientApplication({
      auth: {
        clientId: env.EMULATOR_CERT_CLIENT_ID,
        authority,
        knownAuthorities,
        clientCertificate: { thumbprintSha256: hex(certificate.fingerprint256), privateKey, x5c: certificatePem },
      },
    }).acquireTokenByClientCredential({ scopes }),
  certificateSha1: () =>
    new msal.ConfidentialClientApplication({
      auth: {
        clientId: env.EMULATOR_CERT_CLIENT_ID,
        authority,
        knownAuthorities,
        clientCertificate: { thumbprint: hex(certificate.fingerprint), privateKey },
      },
    }).acquireTokenByClientCredential({ scopes }),
  password: () =>
    new msal.PublicClientApplication({
      auth: { clientId: env.EMULATOR_PUBLIC_CLIENT_ID, authority, knownAuthorities },
    }).acquireTokenByUsernamePassword({
      scopes: [`${base}/user_impersonation`],
      username: env.EMULATOR_USERNAME,
      password: env.EMULATOR_PASSWORD,
    }),
};

const report = { tokens: {}, identities: {} };

// Each token source: the access token (for the Rust side to validate) and WhoAmI under it.
const apis = {};
for (const [name, acquire] of Object.entries(tokenSources)) {
  const result = await acquire();
  if (!result?.accessToken) throw new Error(`${name}: msal-node returned no access token`);
  report.tokens[name] = result.accessToken;
  apis[name] = new DynamicsWebApi({
    serverUrl: base,
    dataApi: { version: '9.2' },
    onTokenRefresh: async () => (await acquire()).accessToken,
  });
}

const api = apis.secret;
try {
  for (const [name, client] of Object.entries(apis)) {
    const whoAmI = await client.callFunction('WhoAmI');
    report.identities[name] = whoAmI.UserId;
  }
  const whoAmI = await api.callFunction('WhoAmI');
  report.whoAmI = { UserId: whoAmI.UserId, BusinessUnitId: whoAmI.BusinessUnitId, OrganizationId: whoAmI.OrganizationId };

  // Create, retrieve (by id and by alternate key), update.
  const contactId = await api.create({ collection: 'contacts', data: { firstname: 'Ada', lastname: 'Lovelace' } });
  const id = await api.create({
    collection: 'accounts',
    data: { name: 'DWA account', accountnumber: 'DWA-1', 'primarycontactid@odata.bind': `/contacts(${contactId})` },
  });
  report.createdId = id;
  const record = await api.retrieve({ collection: 'accounts', key: id, select: ['name', 'accountnumber'] });
  report.retrieved = { name: record.name, accountnumber: record.accountnumber, etag: record['@odata.etag'] };
  const byKey = await api.retrieve({ collection: 'accounts', key: "accountnumber='DWA-1'", select: ['name'] });
  report.byKeyId = byKey.accountid;
  await api.update({ collection: 'accounts', key: id, data: { telephone1: '555-0100', name: 'DWA account (updated)' } });
  const updated = await api.retrieve({ collection: 'accounts', key: id, select: ['name', 'telephone1'] });
  report.updated = { name: updated.name, telephone1: updated.telephone1, etagChanged: updated['@odata.etag'] !== report.retrieved.etag };

  // $expand: single-valued (primarycontactid) and collection-valued (contact_customer_accounts).
  await api.create({
    collection: 'contacts',
    data: { lastname: 'Babbage', 'parentcustomerid_account@odata.bind': `/accounts(${id})` },
  });
  const expanded = await api.retrieve({
    collection: 'accounts',
    key: id,
    select: ['name'],
    expand: [
      { property: 'primarycontactid', select: ['fullname'] },
      { property: 'contact_customer_accounts', select: ['lastname'], orderBy: ['lastname'] },
    ],
  });
  report.expand = {
    primaryContact: expanded.primarycontactid?.fullname ?? null,
    primaryContactId: expanded.primarycontactid?.contactid ?? null,
    contactId,
    children: expanded.contact_customer_accounts?.map((c) => c.lastname) ?? null,
  };
  const expandedList = await api.retrieveMultiple({
    collection: 'contacts',
    select: ['lastname'],
    filter: "lastname eq 'Babbage'",
    expand: [{ property: 'parentcustomerid_account', select: ['name'] }],
  });
  report.expand.parents = expandedList.value.map((c) => c.parentcustomerid_account?.name ?? null);

  // Formatted values (DynamicsWebApi maps the annotation to `<name>@…FormattedValue` and `_Formatted`).
  const formatted = await api.retrieve({
    collection: 'accounts',
    key: id,
    select: ['statecode'],
    includeAnnotations: 'OData.Community.Display.V1.FormattedValue',
  });
  report.formatted = formatted['statecode@OData.Community.Display.V1.FormattedValue'] ?? null;

  // Metadata.
  const entity = await api.retrieveEntity({
    key: "LogicalName='account'",
    select: ['LogicalName', 'EntitySetName', 'PrimaryIdAttribute', 'PrimaryNameAttribute'],
  });
  report.metadata = {
    entity: {
      LogicalName: entity.LogicalName,
      EntitySetName: entity.EntitySetName,
      PrimaryIdAttribute: entity.PrimaryIdAttribute,
      PrimaryNameAttribute: entity.PrimaryNameAttribute,
    },
  };
  const entities = await api.retrieveEntities({ select: ['LogicalName', 'EntitySetName'], filter: "LogicalName eq 'contact'" });
  report.metadata.entities = entities.value.map((e) => e.EntitySetName);
  const picklists = await api.retrieveAttributes({
    entityKey: "LogicalName='account'",
    castType: 'Microsoft.Dynamics.CRM.PicklistAttributeMetadata',
    select: ['LogicalName'],
    expand: [{ property: 'OptionSet', select: ['Options'] }],
  });
  report.metadata.picklists = picklists.value.map((a) => a.LogicalName).sort();
  report.metadata.picklistOptions = picklists.value.every((a) => Array.isArray(a.OptionSet?.Options) && a.OptionSet.Options.length > 0);
  const attribute = await api.retrieveAttribute({
    entityKey: "LogicalName='account'",
    attributeKey: "LogicalName='accountnumber'",
    castType: 'Microsoft.Dynamics.CRM.StringAttributeMetadata',
    select: ['LogicalName', 'MaxLength'],
  });
  report.metadata.attribute = { LogicalName: attribute.LogicalName, MaxLength: attribute.MaxLength };

  // Bulk create: the collection-bound action CreateMultiple.
  const targets = Array.from({ length: 20 }, (_, i) => ({
    '@odata.type': 'Microsoft.Dynamics.CRM.account',
    name: `DWA bulk ${String(i).padStart(2, '0')}`,
  }));
  const bulk = await api.callAction({
    collection: 'accounts',
    actionName: 'Microsoft.Dynamics.CRM.CreateMultiple',
    action: { Targets: targets },
  });
  report.bulk = { ids: bulk.Ids.length, distinct: new Set(bulk.Ids).size };

  // Paging, 7 a page, over every account (the Rust side knows how many there are).
  const firstPage = await api.retrieveMultiple({ collection: 'accounts', select: ['name'], maxPageSize: 7, orderBy: ['name'] });
  report.firstPage = { count: firstPage.value.length, hasNext: Boolean(firstPage.oDataNextLink) };
  let pages = 1;
  let rows = firstPage.value.length;
  let next = firstPage.oDataNextLink;
  while (next) {
    const page = await api.retrieveMultiple({ collection: 'accounts', select: ['name'], maxPageSize: 7, orderBy: ['name'] }, next);
    pages += 1;
    rows += page.value.length;
    next = page.oDataNextLink;
  }
  report.paging = { pages, rows };
  const all = await api.retrieveAll({ collection: 'accounts', select: ['name'], maxPageSize: 10 });
  report.retrieveAll = { rows: all.value.length, ids: new Set(all.value.map((r) => r.accountid)).size };

  // A batch: a change set with Content-ID references, then a query outside it.
  api.startBatch();
  api.create({ collection: 'accounts', data: { name: 'DWA batch account' }, contentId: '1' });
  api.create({ collection: 'contacts', data: { lastname: 'Batch', 'parentcustomerid_account@odata.bind': '$1' }, contentId: '2' });
  api.update({ contentId: '$1', data: { 'primarycontactid@odata.bind': '$2' } });
  api.retrieveMultiple({ collection: 'contacts', select: ['lastname'], filter: "lastname eq 'Batch'" });
  const results = await api.executeBatch();
  report.batch = {
    results: results.length,
    accountId: results[0],
    contactId: results[1],
    contacts: results[3]?.value?.map((c) => c.lastname) ?? null,
  };
  const linked = await api.retrieve({ collection: 'accounts', key: results[0], select: ['_primarycontactid_value'] });
  report.batch.primaryContact = linked._primarycontactid_value;

  // Delete, then the record is gone (404 with Dataverse's error code).
  await api.deleteRecord({ collection: 'accounts', key: id });
  try {
    await api.retrieve({ collection: 'accounts', key: id });
    report.missing = 'no error';
  } catch (error) {
    report.missing = { status: error.status, code: error.code };
  }
  process.stdout.write(JSON.stringify(report) + '\n');
} catch (error) {
  process.stderr.write(`dynamics-web-api failed: ${error?.stack ?? JSON.stringify(error)}\n${JSON.stringify(error)}\n`);
  delete report.tokens;
  process.stderr.write(`report so far: ${JSON.stringify(report)}\n`);
  process.exit(1);
}
