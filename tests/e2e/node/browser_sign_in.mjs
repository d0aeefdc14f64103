// One browser signs in at each of several URLs of a site protected by easyauth, in order, the
// way a person would: open the URL, sign in on the identity provider's page when it asks (and
// consent when asked), and land back on the URL. The same browser (one profile) visits them
// all, so the identity provider's own session may skip the password the second time.
//
//   node browser_sign_in.mjs --url URL [--url URL ...] --user U --password P
//        --screenshot-dir DIR [--ca-file PEM] [--step-timeout MS]
//
// Prints one JSON line: {ok, visits: [{url, final_url, signed_in_on_idp, consent_shown, text}]}
// (text: the final page's text, e.g. the echo app's JSON) and exits 0, or 1 with the failing step
// and a screenshot.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, redact } from './chromium.mjs';

function parseArgs(argv) {
  const opts = { urls: [], stepTimeout: 15000, ca: process.env.NODE_EXTRA_CA_CERTS || '' };
  const names = { '--user': 'user', '--password': 'password', '--screenshot-dir': 'shots',
    '--ca-file': 'ca', '--step-timeout': 'stepTimeout' };
  for (let i = 0; i < argv.length; i++) {
    if (i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    if (argv[i] === '--url') { opts.urls.push(argv[++i]); continue; }
    const key = names[argv[i]];
    if (!key) throw new Error(`bad argument ${argv[i]}`);
    opts[key] = argv[++i];
  }
  if (!opts.urls.length || !opts.user || !opts.password || !opts.shots) {
    throw new Error('need --url, --user, --password and --screenshot-dir');
  }
  opts.stepTimeout = Number(opts.stepTimeout);
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, step: 'arguments', error: e.message }));
    process.exit(2);
  }
  mkdirSync(opts.shots, { recursive: true });
  const result = { ok: false, visits: [], navigations: [] };
  const watchdog = setTimeout(() => {
    console.log(JSON.stringify({ ...result, ok: false, step: result.step || 'watchdog', error: 'watchdog expired' }));
    process.exit(1);
  }, opts.stepTimeout * 5 * opts.urls.length);
  const browser = await launch({ ca: opts.ca, timeout: opts.stepTimeout });
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(opts.stepTimeout);
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) {
      result.navigations.push(`${r.request().method()} ${redact(r.url())} -> ${r.status()}`);
    }
  });
  const onSignIn = async () => (await page.locator('input[name="passwd"]').count()) > 0;
  try {
    for (const [i, url] of opts.urls.entries()) {
      const origin = new URL(url).origin;
      const visit = { url, signed_in_on_idp: false, consent_shown: false };
      result.step = `open ${url}`;
      await page.goto(url);
      const home = page.waitForURL((u) => u.origin === origin, { waitUntil: 'load' });
      if (new URL(page.url()).origin !== origin && await onSignIn()) {
        result.step = `sign in for ${url}`;
        visit.signed_in_on_idp = true;
        await page.fill('input[name="login"]', opts.user);
        await page.fill('input[name="passwd"]', opts.password);
        await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type="submit"]')]);
        if (new URL(page.url()).origin !== origin && await onSignIn()) {
          throw new Error('the identity provider refused the sign-in');
        }
      }
      const consent = page.locator('button[name="consent"][value="accept"]');
      if (new URL(page.url()).origin !== origin && (await consent.count()) > 0) {
        result.step = `consent for ${url}`;
        visit.consent_shown = true;
        await consent.click();
      }
      result.step = `back at ${origin}`;
      await home;
      visit.final_url = page.url();
      visit.text = await page.evaluate(() => document.body ? document.body.innerText : '');
      const shot = join(opts.shots, `visit-${i + 1}.png`);
      await page.screenshot({ path: shot });
      visit.screenshot = shot;
      result.visits.push(visit);
    }
    delete result.step;
    result.ok = true;
  } catch (e) {
    result.error = String(e && e.message ? e.message : e).split('\n').slice(0, 6).join('\n');
    result.url = redact(page.url());
    result.page_text = await page.evaluate(() => document.body ? document.body.innerText : '')
      .then((t) => t.slice(0, 3000)).catch(() => null);
    await page.screenshot({ path: join(opts.shots, 'failure.png') }).catch(() => {});
  }
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, step: 'internal', error: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
