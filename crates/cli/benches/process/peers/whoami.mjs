// One WhoAmI, as a Node.js script does it with DynamicsWebApi and MSAL for Node.js: a token
// by client secret (msal-node), then `callFunction('WhoAmI')`. Run whole by the process
// bench's start-up job (issue 25). D365_BENCH_PEERS names where the packages are installed;
// the emulator comes in EMULATOR_* variables, its CA in NODE_EXTRA_CA_CERTS.
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.D365_BENCH_PEERS, 'node', 'node_modules', 'peers.cjs'));
const { ConfidentialClientApplication, LogLevel } = require('@azure/msal-node');
const { DynamicsWebApi } = require('dynamics-web-api');

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
const me = await api.callFunction('WhoAmI');
console.log(me.UserId);
