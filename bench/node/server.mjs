// Peer identity provider for `cargo xtask bench`: node oidc-provider with one confidential
// client, the client_credentials grant and RS256 JWT access tokens (resource indicators),
// served over HTTPS. Configured through the environment:
//   BENCH_PORT, BENCH_TLS_CERT, BENCH_TLS_KEY (PEM files), BENCH_ISSUER (https://127.0.0.1:PORT)
import fs from 'node:fs';
import https from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing environment variable ${name}`);
  return v;
};
const port = Number(env('BENCH_PORT'));
const issuer = env('BENCH_ISSUER');

export const CLIENT_ID = 'bench-client';
export const CLIENT_SECRET = 'bench-client-secret-0123456789';
export const RESOURCE = 'api://bench-api';
export const SCOPE = 'Data.Read';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: [SCOPE],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});

const server = https.createServer(
  { key: fs.readFileSync(env('BENCH_TLS_KEY')), cert: fs.readFileSync(env('BENCH_TLS_CERT')) },
  provider.callback(),
);
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  console.error(`oidc-provider listening on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
