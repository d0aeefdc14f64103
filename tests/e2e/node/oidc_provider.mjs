// A custom OpenID Connect provider for the `easyauth proxy` e2e tests: node oidc-provider over
// HTTPS with one confidential client (hybrid `code id_token` and `code`), a fixed user and the
// built-in development login/consent pages. Configured through the environment:
//   OIDC_PORT, OIDC_ISSUER (https://127.0.0.1:PORT), OIDC_TLS_CERT, OIDC_TLS_KEY (PEM files),
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (space-separated),
//   OIDC_POST_LOGOUT_REDIRECT_URIS (space-separated, optional)
import fs from 'node:fs';
import https from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`missing environment variable ${name}`);
  return v;
};
const port = Number(env('OIDC_PORT'));
const issuer = env('OIDC_ISSUER');

// The fixed user (tests sign in with login = USER.sub; `sub` is the login name).
export const USER = {
  sub: 'myoidc-user-0001',
  email: 'carol@myoidc.test',
  name: 'Carol Custom',
  preferred_username: 'carol@myoidc.test',
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'myoidc-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env('OIDC_CLIENT_ID'),
      client_secret: env('OIDC_CLIENT_SECRET'),
      // native: oidc-provider refuses http redirect URIs for web clients using the hybrid flow,
      // and allows http loopback ones for native clients
      application_type: 'native',
      grant_types: ['authorization_code', 'implicit', 'refresh_token'],
      response_types: ['code id_token', 'code'],
      redirect_uris: env('OIDC_REDIRECT_URIS').split(' ').filter(Boolean),
      post_logout_redirect_uris: env('OIDC_POST_LOGOUT_REDIRECT_URIS', '').split(' ').filter(Boolean),
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['e2e-cookie-key-0123456789abcdef'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  conformIdTokenClaims: false,
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
  },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ ...USER, sub: id, email_verified: true }),
  }),
});
provider.proxy = false;

const server = https.createServer(
  { key: fs.readFileSync(env('OIDC_TLS_KEY')), cert: fs.readFileSync(env('OIDC_TLS_CERT')) },
  provider.callback(),
);
server.listen(port, '127.0.0.1', () => {
  console.error(`oidc-provider listening on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
