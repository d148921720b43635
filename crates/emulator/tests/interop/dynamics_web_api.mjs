// Drives the unmodified npm package `dynamics-web-api` against the d365 emulator's Web API:
// WhoAmI, create, retrieve, paging (retrieveMultiple with maxPageSize and nextLink, and
// retrieveAll), and a batch with a change set that uses Content-ID references.
//
// Input: D365_INTEROP_DIR (where the package is installed, under node/node_modules),
// EMULATOR_BASE (the organization URL), EMULATOR_TOKEN_ENDPOINT, EMULATOR_CLIENT_ID,
// EMULATOR_CLIENT_SECRET. Output: one JSON object on stdout with what each step saw; the
// Rust test asserts on it. Any failure exits non-zero with the error on stderr.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const packageDir = path.join(process.env.D365_INTEROP_DIR, 'node', 'node_modules', 'dynamics-web-api');
const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
const entry = manifest.exports?.default?.import ?? manifest.module ?? manifest.main;
const { DynamicsWebApi } = await import(pathToFileURL(path.join(packageDir, entry)).href);

const base = process.env.EMULATOR_BASE;

async function acquireToken() {
  const response = await fetch(process.env.EMULATOR_TOKEN_ENDPOINT, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: process.env.EMULATOR_CLIENT_ID,
      client_secret: process.env.EMULATOR_CLIENT_SECRET,
      scope: `${base}/.default`,
    }),
  });
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
  return (await response.json()).access_token;
}

const api = new DynamicsWebApi({
  serverUrl: base,
  dataApi: { version: '9.2' },
  onTokenRefresh: acquireToken,
});

const report = {};
try {
  const whoAmI = await api.callFunction('WhoAmI');
  report.whoAmI = { UserId: whoAmI.UserId, BusinessUnitId: whoAmI.BusinessUnitId, OrganizationId: whoAmI.OrganizationId };

  const id = await api.create({ collection: 'accounts', data: { name: 'DWA account', accountnumber: 'DWA-1' } });
  report.createdId = id;
  const record = await api.retrieve({ collection: 'accounts', key: id, select: ['name', 'accountnumber'] });
  report.retrieved = { name: record.name, accountnumber: record.accountnumber, etag: record['@odata.etag'] };
  const byKey = await api.retrieve({ collection: 'accounts', key: "accountnumber='DWA-1'", select: ['name'] });
  report.byKeyId = byKey.accountid;

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

  api.startBatch();
  api.create({ collection: 'accounts', data: { name: 'DWA batch account' }, contentId: '1' });
  api.create({ collection: 'contacts', data: { lastname: 'Batch', 'parentcustomerid_account@odata.bind': '$1' }, contentId: '2' });
  api.update({ contentId: '$1', data: { 'primarycontactid@odata.bind': '$2' } });
  api.retrieveMultiple({ collection: 'contacts', select: ['lastname'] });
  const results = await api.executeBatch();
  report.batch = {
    results: results.length,
    accountId: results[0],
    contactId: results[1],
    contacts: results[3]?.value?.map((c) => c.lastname) ?? null,
  };
  const linked = await api.retrieve({ collection: 'accounts', key: results[0], select: ['_primarycontactid_value'] });
  report.batch.primaryContact = linked._primarycontactid_value;

  try {
    await api.retrieve({ collection: 'accounts', key: '00000000-0000-0000-0000-000000000001' });
    report.missing = 'no error';
  } catch (error) {
    report.missing = { status: error.status, code: error.code, message: error.message };
  }
  process.stdout.write(JSON.stringify(report) + '\n');
} catch (error) {
  process.stderr.write(`dynamics-web-api failed: ${error?.stack ?? JSON.stringify(error)}\n${JSON.stringify(error)}\n`);
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(1);
}
