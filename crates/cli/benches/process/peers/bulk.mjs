// A bulk create with DynamicsWebApi: the rows of a JSON lines file sent as the bound action
// CreateMultiple (`callAction`; 2.5.0 has no createMultiple helper), CHUNK rows a request,
// one request after another as its documentation shows: `node bulk.mjs FILE CHUNK`. Prints
// the number of ids the service returned. Run by the process bench's bulk job (issue 25);
// D365_BENCH_PEERS names where the packages are installed, the emulator comes in EMULATOR_*
// variables, its CA in NODE_EXTRA_CA_CERTS.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.D365_BENCH_PEERS, 'node', 'node_modules', 'peers.cjs'));
const { ConfidentialClientApplication, LogLevel } = require('@azure/msal-node');
const { DynamicsWebApi } = require('dynamics-web-api');

const [file, chunk] = process.argv.slice(2);
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
let created = 0;
let targets = [];
const send = async () => {
  const answer = await api.callAction({
    collection: 'accounts',
    actionName: 'Microsoft.Dynamics.CRM.CreateMultiple',
    action: { Targets: targets },
  });
  created += answer.Ids.length;
  targets = [];
};
for await (const line of readline.createInterface({ input: fs.createReadStream(file) })) {
  if (!line.trim()) continue;
  targets.push({ '@odata.type': 'Microsoft.Dynamics.CRM.account', ...JSON.parse(line) });
  if (targets.length >= Number(chunk)) await send();
}
if (targets.length > 0) await send();
console.log(created);
