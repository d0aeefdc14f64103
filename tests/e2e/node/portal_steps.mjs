// The tutorial's portal steps in the local portal, clicked as a person clicks them: sign in,
// Home -> the back end -> Authentication -> allowed client applications = the front end -> Save;
// Home -> the front end -> Authentication -> login parameters with the back end's scope -> Save;
// the front end's Environment variables. A screenshot of each blade goes to --screenshot-dir.
//
//   node portal_steps.mjs --portal URL --user U --password P --front NAME --back NAME
//        --front-client ID --back-client ID --screenshot-dir DIR [--ca-file PEM]
//
// Prints one JSON line {ok, blades: [{name, url, text}], step?, error?} and exits 0 or 1.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, redact } from './chromium.mjs';

function parseArgs(argv) {
  const names = { '--portal': 'portal', '--user': 'user', '--password': 'password', '--front': 'front',
    '--back': 'back', '--front-client': 'frontClient', '--back-client': 'backClient',
    '--screenshot-dir': 'shots', '--ca-file': 'ca' };
  const opts = { ca: process.env.NODE_EXTRA_CA_CERTS || '' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    opts[key] = argv[i + 1];
  }
  for (const k of ['portal', 'user', 'password', 'front', 'back', 'frontClient', 'backClient', 'shots']) {
    if (!opts[k]) throw new Error(`missing ${k}`);
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  mkdirSync(opts.shots, { recursive: true });
  const result = { ok: false, blades: [] };
  const watchdog = setTimeout(() => {
    console.log(JSON.stringify({ ...result, error: 'watchdog expired' }));
    process.exit(1);
  }, 90000);
  const browser = await launch({ ca: opts.ca, timeout: 15000 });
  const page = await (await browser.newContext({ viewport: { width: 420, height: 900 } })).newPage();
  page.setDefaultTimeout(15000);
  const blade = async (name) => {
    const shot = join(opts.shots, `${String(result.blades.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    const text = await page.evaluate(() => document.body.innerText);
    result.blades.push({ name, url: redact(page.url()), text: text.slice(0, 4000), screenshot: shot });
    return text;
  };
  const click = async (locator) => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
  };
  try {
    result.step = 'open the portal';
    await page.goto(opts.portal);
    if (await page.locator('input[name="passwd"]').count()) {
      result.step = 'sign in';
      await page.fill('input[name="login"]', opts.user);
      await page.fill('input[name="passwd"]', opts.password);
      await click(page.locator('button[type="submit"]'));
    }
    if (new URL(page.url()).origin !== new URL(opts.portal).origin) {
      throw new Error(`not back at the portal after signing in: ${redact(page.url())}`);
    }
    await blade('home');

    result.step = 'back end -> Authentication';
    await click(page.getByRole('link', { name: opts.back, exact: true }));
    await blade('back-end-overview');
    await click(page.getByRole('link', { name: 'Authentication', exact: true }));
    await blade('back-end-authentication');
    result.step = 'allowed client applications';
    await page.fill('#e-clients', opts.frontClient);
    await click(page.getByRole('button', { name: 'Save' }));
    const saved = await blade('back-end-authentication-saved');
    if (!saved.includes('Saved the identity provider.')) throw new Error('the back end was not saved');

    result.step = 'front end -> Authentication';
    await page.goto(opts.portal);
    await click(page.getByRole('link', { name: opts.front, exact: true }));
    await click(page.getByRole('link', { name: 'Authentication', exact: true }));
    await blade('front-end-authentication');
    result.step = 'login parameters';
    await page.fill('#e-login', `scope=openid offline_access api://${opts.backClient}/user_impersonation`);
    await click(page.getByRole('button', { name: 'Save' }));
    const front = await blade('front-end-authentication-saved');
    if (!front.includes('Saved the identity provider.')) throw new Error('the front end was not saved');

    result.step = 'front end -> Environment variables';
    await click(page.getByRole('link', { name: 'Environment variables', exact: true }));
    await blade('front-end-environment-variables');
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
