// The tutorial's back end: the platform validated the caller's bearer token before this runs
// (allowedAudiences, allowedApplications) and injected the caller's identity.
//
//   GET /get-profile  {displayName, withAuthentication}

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

app.get('/get-profile', (req, res) => {
  const claims = claimsOf(req.get('x-ms-client-principal'));
  const bearer = (req.get('authorization') || '').startsWith('Bearer ');
  res.json({
    displayName: claims.name || req.get('x-ms-client-principal-name') || 'John Doe',
    withAuthentication: bearer && Boolean(req.get('x-ms-client-principal-id')),
  });
});

app.get('/healthz', (req, res) => res.send('ok'));

const port = process.env.PORT || 8080;
app.listen(port, () => console.log(`back end listening on ${port}`));
