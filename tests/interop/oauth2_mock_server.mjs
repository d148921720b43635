// Starts the third-party OAuth 2.0 server `oauth2-mock-server` on 127.0.0.1 (port chosen by
// the OS) for d365's interop tests. The mock server issues tokens to anyone; this script adds
// the client authentication checks an identity provider makes, with node's own crypto (no
// d365 code), and reports every token request as one JSON line on stdout.
//
// Input: D365_INTEROP_DIR (where `cargo xtask test` installed the npm package) and
// D365_INTEROP_EXPECT, JSON: {"client_id", "method": "post"|"basic"|"assertion"|"none",
// "client_secret"?, "certificate_pem"?, "users"?: {"name": "password"}}.
// Output: {"ready": "<token endpoint URL>"} then one {"grant_type", "client_auth", "ok", ...}
// per request. It exits when stdin closes, so it never outlives the test.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// The package's ESM entry, as its package.json names it (the layout differs across majors).
const packageDir = path.join(process.env.D365_INTEROP_DIR, 'node', 'node_modules', 'oauth2-mock-server');
const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
const exported = manifest.exports?.['.'];
const entry = (typeof exported === 'string' ? exported : exported?.import ?? exported?.default) ?? manifest.main;
const { OAuth2Server } = await import(pathToFileURL(path.join(packageDir, entry)).href);
const expect = JSON.parse(process.env.D365_INTEROP_EXPECT ?? '{}');

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
await server.start(0, '127.0.0.1');
const tokenUrl = new URL('/token', server.issuer.url).href;

// RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
const formDecode = (text) => decodeURIComponent(text.replace(/\+/g, ' '));

function basicCredentials(header) {
  if (!header || !header.startsWith('Basic ')) return null;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

function verifyAssertion(jwt) {
  const [headerPart, payloadPart, signaturePart] = jwt.split('.');
  const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString());
  const claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString());
  const certificate = new crypto.X509Certificate(expect.certificate_pem);
  const options = header.alg === 'PS256'
    ? { key: certificate.publicKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
    : { key: certificate.publicKey, padding: crypto.constants.RSA_PKCS1_PADDING };
  const signed = crypto.verify('sha256', Buffer.from(`${headerPart}.${payloadPart}`), options, Buffer.from(signaturePart, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  const sha256 = crypto.createHash('sha256').update(certificate.raw).digest('base64url');
  const sha1 = crypto.createHash('sha1').update(certificate.raw).digest('base64url');
  const problems = [];
  if (!signed) problems.push('signature');
  if (!['PS256', 'RS256'].includes(header.alg)) problems.push(`alg ${header.alg}`);
  if (header.alg === 'PS256' && header['x5t#S256'] !== sha256) problems.push('x5t#S256');
  if (header.alg === 'RS256' && header.x5t !== sha1) problems.push('x5t');
  if (claims.aud !== tokenUrl) problems.push(`aud ${claims.aud}`);
  if (claims.iss !== expect.client_id || claims.sub !== expect.client_id) problems.push('iss/sub');
  if (!(claims.nbf <= now + 60 && claims.exp > now && claims.exp - claims.nbf <= 600)) problems.push('time window');
  if (typeof claims.jti !== 'string' || claims.jti.length < 16) problems.push('jti');
  return { problems, alg: header.alg, jti: claims.jti };
}

function check(body, headers) {
  const basic = basicCredentials(headers.authorization);
  const report = { grant_type: body.grant_type, scope: body.scope ?? null, resource: body.resource ?? null };
  const problems = [];
  if (basic) {
    report.client_auth = 'basic';
    if (basic.id !== expect.client_id || basic.secret !== expect.client_secret) problems.push('basic credentials');
    if (body.client_secret !== undefined) problems.push('secret also in body');
  } else if (body.client_assertion !== undefined) {
    report.client_auth = 'assertion';
    if (body.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') problems.push('assertion type');
    if (body.client_id !== expect.client_id) problems.push('client_id');
    const verified = verifyAssertion(body.client_assertion);
    problems.push(...verified.problems);
    report.alg = verified.alg;
    report.jti = verified.jti;
  } else if (body.client_secret !== undefined) {
    report.client_auth = 'post';
    if (body.client_id !== expect.client_id || body.client_secret !== expect.client_secret) problems.push('post credentials');
  } else {
    report.client_auth = 'none';
    if (body.client_id !== expect.client_id) problems.push('client_id');
  }
  if (report.client_auth !== expect.method) problems.push(`expected ${expect.method}`);
  if (body.grant_type === 'password') {
    report.username = body.username;
    if ((expect.users ?? {})[body.username] !== body.password) problems.push('user credentials');
  }
  report.ok = problems.length === 0;
  report.problems = problems;
  return report;
}

server.service.on('beforeResponse', (response, req) => {
  const report = check(req.body, req.headers);
  if (!report.ok) {
    response.statusCode = 401;
    response.body = { error: 'invalid_client', error_description: `interop check failed: ${report.problems.join(', ')}` };
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
});

process.stdout.write(`${JSON.stringify({ ready: tokenUrl })}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  await server.stop();
  process.exit(0);
});
