// The tutorial's front end, as a person writes it for App Service with authentication on: the
// platform signs the user in and puts the user's tokens in X-MS-TOKEN-AAD-* headers; this app
// calls the back end with the access token.
//
//   GET /             "Signed in as ...", a "Get user's profile" link, sign-out
//   GET /get-profile  calls ${BACKEND_URL}/get-profile with the token; shows the profile
//                     (#withAuthentication, #displayName) or the refusal (#error, #reason)

const express = require('express');

const app = express();

function claimsOf(principalHeader) {
  if (!principalHeader) return {};
  try {
    const principal = JSON.parse(Buffer.from(principalHeader, 'base64').toString('utf8'));
    const claims = {};
    for (const c of principal.claims || []) claims[c.typ] = c.val;
    return claims;
  } catch {
    return {};
  }
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;

app.get('/', (req, res) => {
  const claims = claimsOf(req.get('x-ms-client-principal'));
  const who = req.get('x-ms-client-principal-name') || claims.name || claims.sub || 'nobody';
  res.send(page('Easy auth - Get Profile from API server', `
<p>Signed in as <b>${escape(who)}</b></p>
<p><a href="/get-profile">Get user's profile</a></p>
<p><a href="/.auth/me">/.auth/me</a> | <a href="/.auth/refresh">/.auth/refresh</a> | <a href="/.auth/logout">Sign out (/.auth/logout)</a></p>`));
});

app.get('/get-profile', async (req, res) => {
  const backend = (process.env.BACKEND_URL || '').replace(/\/+$/, '');
  const token = req.get('x-ms-token-aad-access-token');
  if (!backend) {
    return res.send(page('API server - Profile', '<p id="error">BACKEND_URL is not set (az webapp config appsettings set)</p>'));
  }
  if (!token && process.env.APPSETTING_WEBSITE_AUTH_ENABLED === 'True') {
    return res.send(page('API server - Profile', '<p id="error">Client: No access token found</p>'));
  }
  try {
    const r = await fetch(`${backend}/get-profile`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    const text = await r.text();
    if (!r.ok) {
      const reason = r.headers.get('x-easyauth-reason') || '';
      return res.send(page('API server - Profile', `<h5>Remote url: ${escape(backend)}/get-profile</h5>
<p id="error">the back end answered ${r.status}</p><p id="reason">${escape(reason)}</p>
<p id="advice">${r.status === 403 ? 'Add the front end to the back end\'s allowedApplications.' : r.status === 401 ? 'Check the front end\'s loginParameters scope (api://&lt;back end&gt;/user_impersonation).' : ''}</p>`));
    }
    const profile = JSON.parse(text);
    return res.send(page('API server - Profile', `<h5>Remote url: ${escape(backend)}/get-profile</h5>
<p>displayName: <span id="displayName">${escape(profile.displayName)}</span></p>
<p>withAuthentication: <span id="withAuthentication">${escape(profile.withAuthentication)}</span></p>`));
  } catch (e) {
    return res.send(page('API server - Profile', `<p id="error">the back end could not be reached: ${escape(e.message)}</p>`));
  }
});

app.get('/healthz', (req, res) => res.send('ok'));

const port = process.env.PORT || process.env.WEB_PORT || 8080;
app.listen(port, () => console.log(`front end listening on ${port}`));
