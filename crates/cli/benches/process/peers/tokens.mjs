// Token figures of MSAL for Node.js (@azure/msal-node), for the process bench (issue 25).
//
// `node tokens.mjs cache-hit ROUNDS CALLS`: one confidential client gets a token, then
// ROUNDS rounds of CALLS `acquireTokenByClientCredential` calls answered from its in-memory
// cache (checked: `fromCache`); prints the nanoseconds per call of each round.
// `node tokens.mjs cold RUNS`: RUNS times a new client gets one token from the emulator
// (checked: not from a cache); prints each one's nanoseconds. Output: one JSON object.
// D365_BENCH_PEERS names where the packages are installed (node/node_modules); the
// emulator comes in EMULATOR_* variables and its CA in NODE_EXTRA_CA_CERTS.
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.D365_BENCH_PEERS, 'node', 'node_modules', 'peers.cjs'));
const { ConfidentialClientApplication, LogLevel } = require('@azure/msal-node');

const base = process.env.EMULATOR_BASE;
const scope = `${base}/.default`;

function app() {
  return new ConfidentialClientApplication({
    auth: {
      clientId: process.env.EMULATOR_CLIENT_ID,
      clientSecret: process.env.EMULATOR_CLIENT_SECRET,
      authority: `${base}/${process.env.EMULATOR_TENANT}`,
      knownAuthorities: [new URL(base).host],
    },
    system: { loggerOptions: { logLevel: LogLevel.Error, loggerCallback: () => {} } },
  });
}

async function token(client, fromCache) {
  const result = await client.acquireTokenByClientCredential({ scopes: [scope] });
  if (!result?.accessToken) throw new Error('no token');
  if (result.fromCache !== fromCache) throw new Error(`fromCache is ${result.fromCache}, expected ${fromCache}`);
}

const [mode, first, second] = process.argv.slice(2);
if (mode === 'cache-hit') {
  const client = app();
  await token(client, false);
  const perCall = [];
  for (let round = 0; round < Number(first); round += 1) {
    const calls = Number(second);
    const started = process.hrtime.bigint();
    for (let call = 0; call < calls; call += 1) {
      await token(client, true);
    }
    perCall.push(Number(process.hrtime.bigint() - started) / calls);
  }
  console.log(JSON.stringify({ msal_node: perCall }));
} else if (mode === 'cold') {
  const runs = [];
  for (let run = 0; run < Number(first); run += 1) {
    const started = process.hrtime.bigint();
    await token(app(), false);
    runs.push(Number(process.hrtime.bigint() - started));
  }
  console.log(JSON.stringify({ msal_node: runs }));
} else {
  throw new Error(`unknown mode ${mode}`);
}
