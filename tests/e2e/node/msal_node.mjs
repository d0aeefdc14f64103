// Runs MSAL Node (@azure/msal-node) operations against easyauth idp and prints JSON results.
//
// Usage: node msal_node.mjs '<json>'   (or the JSON in env EASYAUTH_MSAL_NODE_CONFIG)
// {
//   "authority": "https://127.0.0.1:PORT/<tenant-id>",
//   "knownAuthorities": ["127.0.0.1:PORT"],
//   "ops": [
//     {"name": "cc", "op": "client_credentials", "clientId": "...", "clientSecret": "...", "scopes": [...]},
//     {"name": "cc-cert", "op": "client_credentials", "clientId": "...",
//      "certificate": {"thumbprint": "<sha1 hex>" | "thumbprintSha256": "<hex>", "privateKey": "<pem>"},
//      "scopes": [...]},
//     {"name": "obo", "op": "on_behalf_of", "clientId": "...", "clientSecret": "...",
//      "oboAssertion": "<user access token>", "scopes": [...]},
//     {"name": "url", "op": "auth_code_url", "clientId": "...", "clientSecret": "...",
//      "scopes": [...], "redirectUri": "http://localhost:8400"}      -> {url, verifier, state}
//     {"name": "code", "op": "by_code", "clientId": "...", "clientSecret": "...", "scopes": [...],
//      "redirectUri": "...", "code": "...", "verifier": "...", "state": "..."}
//        -> the auth-code result plus "refreshed": acquireTokenSilent({forceRefresh: true})
//   ]
// }
// Output (stdout, one JSON document): {"results": {"<name>": {"ok": true, "accessToken": ..., ...}
//                                                  | {"ok": false, "errorCode": ..., ...}}}
// The CA of the identity provider must be given with NODE_EXTRA_CA_CERTS.
import { ConfidentialClientApplication, CryptoProvider, LogLevel } from '@azure/msal-node';

const raw = process.argv[2] ?? process.env.EASYAUTH_MSAL_NODE_CONFIG;
if (!raw) {
  console.error('usage: node msal_node.mjs <config json>');
  process.exit(2);
}
const config = JSON.parse(raw);

function makeApp(op) {
  const auth = {
    clientId: op.clientId,
    authority: config.authority,
    knownAuthorities: config.knownAuthorities,
  };
  if (op.clientSecret) auth.clientSecret = op.clientSecret;
  if (op.certificate) auth.clientCertificate = op.certificate;
  return new ConfidentialClientApplication({
    auth,
    system: {
      loggerOptions: {
        logLevel: process.env.MSAL_NODE_VERBOSE ? LogLevel.Verbose : LogLevel.Warning,
        piiLoggingEnabled: !!process.env.MSAL_NODE_VERBOSE,
        loggerCallback: (_level, message) => console.error(`[msal-node] ${message}`),
      },
    },
  });
}

function describeResult(res) {
  return {
    ok: true,
    accessToken: res.accessToken,
    idToken: res.idToken || null,
    scopes: res.scopes,
    tokenType: res.tokenType,
    expiresOn: res.expiresOn ? res.expiresOn.toISOString() : null,
    fromCache: res.fromCache,
    tenantId: res.tenantId,
    uniqueId: res.uniqueId,
    account: res.account ? { username: res.account.username, homeAccountId: res.account.homeAccountId } : null,
  };
}

function describeError(err) {
  return {
    ok: false,
    name: err?.name,
    errorCode: err?.errorCode,
    errorMessage: err?.errorMessage ?? String(err?.message ?? err),
    subError: err?.subError,
    errorNo: err?.errorNo,
  };
}

const results = {};
for (const op of config.ops) {
  try {
    const app = makeApp(op);
    let res;
    if (op.op === 'client_credentials') {
      res = await app.acquireTokenByClientCredential({ scopes: op.scopes, skipCache: true });
    } else if (op.op === 'on_behalf_of') {
      res = await app.acquireTokenOnBehalfOf({ oboAssertion: op.oboAssertion, scopes: op.scopes });
    } else if (op.op === 'auth_code_url') {
      const pkce = await new CryptoProvider().generatePkceCodes();
      const state = new CryptoProvider().createNewGuid();
      const url = await app.getAuthCodeUrl({
        scopes: op.scopes, redirectUri: op.redirectUri, codeChallenge: pkce.challenge,
        codeChallengeMethod: 'S256', state, nonce: op.nonce,
      });
      results[op.name] = { ok: true, url, verifier: pkce.verifier, state };
      continue;
    } else if (op.op === 'by_code') {
      const first = await app.acquireTokenByCode(
        { scopes: op.scopes, redirectUri: op.redirectUri, code: op.code, codeVerifier: op.verifier, state: op.state, nonce: op.nonce },
        { code: op.code, state: op.state, client_info: op.clientInfo, nonce: op.nonce },
      );
      const out = describeResult(first);
      try {
        out.refreshed = describeResult(
          await app.acquireTokenSilent({ account: first.account, scopes: op.scopes, forceRefresh: true }),
        );
      } catch (err) {
        out.refreshed = describeError(err);
      }
      results[op.name] = out;
      continue;
    } else {
      throw new Error(`unknown op ${op.op}`);
    }
    results[op.name] = describeResult(res);
  } catch (err) {
    results[op.name] = describeError(err);
  }
}
process.stdout.write(JSON.stringify({ results }) + '\n');
