// A whole-table export with DynamicsWebApi's `retrieveAll`, written as JSON lines like
// `d365 get --all -o jsonl --out FILE`: `node export.mjs FILE PAGE_SIZE`. Prints the row
// count. Run by the process bench's export job (issue 25); D365_BENCH_PEERS names where the
// packages are installed, the emulator comes in EMULATOR_* variables, its CA in
// NODE_EXTRA_CA_CERTS.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.D365_BENCH_PEERS, 'node', 'node_modules', 'peers.cjs'));
const { ConfidentialClientApplication, LogLevel } = require('@azure/msal-node');
const { DynamicsWebApi } = require('dynamics-web-api');

const [file, pageSize] = process.argv.slice(2);
const base = process.env.EMULATOR_BASE;
const msal = new ConfidentialClientApplication({
  auth: {
    clientId: process.env.EMULATOR_CLIENT_ID,
    clientSecret: process.env.EMULATOR_CLIENT_SECRET,
    authority: `${base}/${process.env.EMULATOR_TENANT}`,
    knownAuthorities: [new URL(base).host],
  },
  system: { loggerOptions: { logLevel: LogLevel.Error, loggerCallback: () => {} } },
});
const api = new DynamicsWebApi({
  serverUrl: base,
  dataApi: { version: '9.2' },
  onTokenRefresh: async () => (await msal.acquireTokenByClientCredential({ scopes: [`${base}/.default`] })).accessToken,
});
const all = await api.retrieveAll({
  collection: 'accounts',
  select: process.env.EXPORT_SELECT.split(','),
  maxPageSize: Number(pageSize),
});
const out = fs.createWriteStream(file);
for (const row of all.value) {
  if (!out.write(`${JSON.stringify(row)}\n`)) {
    await new Promise((resolve) => out.once('drain', resolve));
  }
}
await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
console.log(all.value.length);
