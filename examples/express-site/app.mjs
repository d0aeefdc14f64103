// A small Express app written the way one is for App Service with authentication (Easy Auth)
// on: it listens on process.env.PORT, trusts the identity headers the platform injects, and
// calls another app with the user's access token from the token store.
//
//   GET /      JSON: the X-MS-CLIENT-PRINCIPAL-NAME / -ID / -IDP headers, the decoded
//              X-MS-CLIENT-PRINCIPAL (base64 JSON), whether X-MS-TOKEN-AAD-ACCESS-TOKEN is present
//              (never its value), the Authorization scheme it was called with, and the
//              WEBSITE_* / APPSETTING_* environment it sees (secret-looking values masked).
//   GET /call  calls `${CALLEE_URL}/` with `Authorization: Bearer <X-MS-TOKEN-AAD-ACCESS-TOKEN>`
//              and answers {status, body} (body parsed as JSON when it is JSON).
//   GET /healthz  "ok" (no identity needed by the app itself).

import express from 'express';

const app = express();
const name = process.env.WEBSITE_SITE_NAME || 'express-app';

const SECRETISH = /SECRET|PASSWORD|KEY|TOKEN|CONNECTIONSTRING/i;
const SHOWN_NAMES = ['PORT', 'CALLEE_URL'];
const SHOWN_PREFIXES = ['WEBSITE_', 'APPSETTING_', 'MICROSOFT_PROVIDER_'];

function seenEnv() {
  const out = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (SHOWN_NAMES.includes(k) || SHOWN_PREFIXES.some((p) => k.startsWith(p))) {
      // a secret's value is never shown; an unresolved placeholder is not a secret
      out[k] = SECRETISH.test(k) && !v.includes('${') ? `<${v.length} chars>` : v;
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

function decodePrincipal(value) {
  if (!value) return null;
  try {
    return JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  } catch (e) {
    return { undecodable: String(e.message) };
  }
}

app.get('/', (req, res) => {
  const auth = req.get('authorization');
  res.json({
    app: name,
    principal_name: req.get('x-ms-client-principal-name') ?? null,
    principal_id: req.get('x-ms-client-principal-id') ?? null,
    principal_idp: req.get('x-ms-client-principal-idp') ?? null,
    principal: decodePrincipal(req.get('x-ms-client-principal')),
    access_token_present: Boolean(req.get('x-ms-token-aad-access-token')),
    id_token_present: Boolean(req.get('x-ms-token-aad-id-token')),
    authorization_scheme: auth ? auth.split(' ')[0] : null,
    header_names: Object.keys(req.headers).sort(),
    env: seenEnv(),
  });
});

app.get('/call', async (req, res) => {
  const callee = process.env.CALLEE_URL;
  if (!callee) {
    res.status(500).json({ error: 'CALLEE_URL is not set' });
    return;
  }
  const token = req.get('x-ms-token-aad-access-token');
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const r = await fetch(`${callee.replace(/\/+$/, '')}/`, { headers, redirect: 'manual',
      signal: AbortSignal.timeout(15000) });
    const text = await r.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      body = text.slice(0, 2000);
    }
    res.json({
      status: r.status,
      reason: r.headers.get('x-easyauth-reason'),
      www_authenticate: r.headers.get('www-authenticate'),
      sent_token: Boolean(token),
      body,
    });
  } catch (e) {
    res.status(502).json({ error: `calling ${callee}: ${e.message}`, cause: String(e.cause ?? '') });
  }
});

app.get('/healthz', (_req, res) => res.type('text').send('ok'));

const port = Number(process.env.PORT || 8080);
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`${name} (express) listening on 127.0.0.1:${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
