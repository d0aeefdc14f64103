// Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core.
// Never run `npx playwright install`: it downloads a browser, which cannot work here.

import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// Without the background-networking flags Chromium floods the closed network with connections.
export const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** base64(sha256(SubjectPublicKeyInfo)) of every certificate in a PEM file. */
export function spkiHashes(pemFile) {
  const pem = readFileSync(pemFile, 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) || [];
  return blocks.map((b) => {
    const spki = new X509Certificate(b).publicKey.export({ type: 'spki', format: 'der' });
    return createHash('sha256').update(spki).digest('base64');
  });
}

/**
 * Launches Chromium with a fresh temporary profile. `ca` (a PEM file) makes it accept chains
 * containing that CA's public key (--ignore-certificate-errors-spki-list); nothing else is
 * accepted.
 */
export async function launch({ ca, timeout }) {
  const args = [...LAUNCH_ARGS];
  if (ca) {
    const hashes = spkiHashes(ca);
    if (hashes.length === 0) throw new Error(`no certificate in ${ca}`);
    args.push(`--ignore-certificate-errors-spki-list=${hashes.join(',')}`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args, timeout });
}

/** A URL without its query values (authorization requests carry state and nonce). */
export function redact(url) {
  try {
    const u = new URL(url);
    const keys = [...u.searchParams.keys()];
    return `${u.origin}${u.pathname}${keys.length ? `?${keys.join('&')}` : ''}`;
  } catch {
    return String(url);
  }
}
