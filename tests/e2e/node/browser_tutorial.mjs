// The tutorial's acceptance flow in a real browser: headless Chromium (/usr/bin/chromium, the
// Debian package) driven by playwright-core. Never run `npx playwright install`: it downloads a
// browser, which cannot work here.
//
//   node browser_tutorial.mjs --frontend URL --user U --password P --screenshot-dir DIR
//        [--scenario full|profile-status] [--idp URL] [--ca-file PEM] [--step-timeout MS]
//
// Prints exactly one JSON line on stdout and exits 0 on success, 1 on failure (with a screenshot
// `failure-<step>.png` and the page's text in the JSON), 2 on bad arguments.
//
// Scenarios
//   full            open the front end -> the IdP's sign-in page (asserted) -> sign in -> consent
//                   when asked -> the front end's home page -> "Get user's profile" ->
//                   withAuthentication true and the display name (screenshot profile.png) ->
//                   sign out (/.auth/logout) -> /get-profile again must end at the IdP's sign-in
//                   page.
//   profile-status  sign in, open /get-profile and report what the page shows: the back end's
//                   HTTP status (200 on success), the module's reason (x-easyauth-reason) and the
//                   advice text; succeeds whatever the status (the caller asserts on it).
//
// The IdP's certificate comes from the platform's local CA: `--ca-file` (default
// $NODE_EXTRA_CA_CERTS) makes Chromium accept chains containing that CA's public key
// (--ignore-certificate-errors-spki-list); nothing else is accepted.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, redact } from './chromium.mjs';

const PROFILE_LINK = "Get user's profile";

function parseArgs(argv) {
  const opts = { scenario: 'full', stepTimeout: 15000, ca: process.env.NODE_EXTRA_CA_CERTS || '' };
  const names = {
    '--frontend': 'frontend', '--user': 'user', '--password': 'password', '--screenshot-dir': 'shots',
    '--scenario': 'scenario', '--idp': 'idp', '--ca-file': 'ca', '--step-timeout': 'stepTimeout',
    '--display-name': 'displayName',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    opts[key] = argv[++i];
  }
  for (const k of ['frontend', 'user', 'password', 'shots']) {
    if (!opts[k]) throw new Error(`missing --${k === 'shots' ? 'screenshot-dir' : k}`);
  }
  if (!['full', 'profile-status', 'fragment'].includes(opts.scenario)) throw new Error(`unknown scenario ${opts.scenario}`);
  opts.stepTimeout = Number(opts.stepTimeout);
  opts.frontend = opts.frontend.replace(/\/+$/, '');
  return opts;
}

class StepFailure extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
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
  const frontendOrigin = new URL(opts.frontend).origin;
  const idpOrigin = opts.idp ? new URL(opts.idp).origin : null;
  const result = { ok: false, scenario: opts.scenario, steps: [], navigations: [], screenshots: [] };

  // Nothing may hang: a watchdog well above the sum of the step timeouts.
  const watchdog = setTimeout(() => {
    console.log(JSON.stringify({ ...result, ok: false, step: result.current || 'watchdog',
      error: 'browser_tutorial.mjs watchdog expired' }));
    process.exit(1);
  }, opts.stepTimeout * 6);

  // launch() gives Chromium a fresh temporary profile (user-data dir) of its own, removed on
  // close; the context below is new as well: no cookie survives from an earlier run.
  const browser = await launch({ ca: opts.ca, timeout: opts.stepTimeout });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(opts.stepTimeout);
  page.setDefaultNavigationTimeout(opts.stepTimeout);
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) {
      result.navigations.push(`${r.request().method()} ${redact(r.url())} -> ${r.status()}`);
    }
  });

  let step = 'start';
  const t0 = Date.now();
  const enter = (name) => {
    step = name;
    result.current = name;
    result.steps.push(`${name} @${Date.now() - t0}ms`);
  };
  const fail = (message) => {
    throw new StepFailure(step, message);
  };
  const here = () => new URL(page.url());
  const onSignInPage = async () => (await page.locator('input[name="login"]').count()) > 0
    && (await page.locator('input[name="passwd"]').count()) > 0;
  const expectSignInPage = async (what) => {
    await page.waitForSelector('input[name="passwd"]');
    const origin = here().origin;
    if (origin === frontendOrigin) fail(`${what}: the sign-in form is served by the front end (${page.url()})`);
    if (idpOrigin && origin !== idpOrigin) fail(`${what}: sign-in page at ${origin}, expected the IdP ${idpOrigin}`);
    if (!(await onSignInPage())) fail(`${what}: not the IdP's sign-in page`);
    return redact(page.url());
  };

  const signIn = async (start = '/') => {
    enter('open-frontend');
    await page.goto(`${opts.frontend}${start}`);
    enter('idp-sign-in-page');
    result.sign_in_page = await expectSignInPage('opening the front end');
    enter('submit-credentials');
    await page.fill('input[name="login"]', opts.user);
    await page.fill('input[name="passwd"]', opts.password);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type="submit"]')]);
    if (here().origin !== frontendOrigin && await onSignInPage()) {
      fail('the IdP refused the sign-in (its sign-in page again)');
    }
    enter('consent-or-home');
    const consent = page.locator('button[name="consent"][value="accept"]');
    // Either the IdP's consent page, or (through its form_post page) the front end.
    await Promise.race([
      consent.waitFor({ state: 'visible' }),
      page.waitForURL((u) => u.origin === frontendOrigin, { waitUntil: 'load' }),
    ]);
    result.consent_shown = here().origin !== frontendOrigin && (await consent.count()) > 0;
    if (result.consent_shown) {
      enter('consent-accept');
      await Promise.all([
        page.waitForURL((u) => u.origin === frontendOrigin, { waitUntil: 'load' }),
        consent.click(),
      ]);
    }
    if (start !== '/') return;
    enter('frontend-home');
    if (here().origin !== frontendOrigin) fail(`after sign-in the browser is at ${redact(page.url())}`);
    if (await page.locator('input[name="passwd"]').count()) fail('the sign-in page was shown again');
    await page.getByText(PROFILE_LINK).first().waitFor({ state: 'visible' });
    result.home_url = redact(page.url());
    result.home_title = await page.title();
    const signedIn = page.locator('p', { hasText: 'Signed in as' }).locator('b');
    result.signed_in_as = (await signedIn.count()) ? await signedIn.first().textContent() : null;
  };

  const openProfile = async () => {
    enter('get-profile');
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/get-profile', { waitUntil: 'load' }),
      page.getByText(PROFILE_LINK).first().click(),
    ]);
    await page.waitForSelector('#withAuthentication, #error');
    const text = async (sel) => ((await page.locator(sel).count())
      ? (await page.locator(sel).first().textContent()).trim() : null);
    const profile = {
      url: redact(page.url()),
      withAuthentication: await text('#withAuthentication'),
      displayName: await text('#displayName'),
      error: await text('#error'),
      reason: await text('#reason'),
      advice: await text('#advice'),
    };
    const m = /answered (\d{3})/.exec(profile.error || '');
    profile.status = profile.withAuthentication !== null ? 200 : (m ? Number(m[1]) : null);
    profile.explanation = [profile.reason, profile.advice].filter(Boolean).join(' | ') || null;
    return profile;
  };

  const shoot = async (name) => {
    const file = join(opts.shots, name);
    await page.screenshot({ path: file, fullPage: true });
    result.screenshots.push(file);
    return file;
  };

  try {
    if (opts.scenario === 'fragment') {
      // preserveUrlFragmentsForLogins: a page opened with a #fragment is where sign-in ends.
      await signIn('/debug#section-2');
      enter('back-with-fragment');
      await page.waitForURL((u) => u.origin === frontendOrigin && u.pathname === '/debug', { waitUntil: 'load' });
      result.final_path = here().pathname;
      result.final_hash = here().hash;
      delete result.current;
      result.ok = true;
      await browser.close().catch(() => {});
      clearTimeout(watchdog);
      console.log(JSON.stringify(result));
      return;
    }
    await signIn();
    const profile = await openProfile();
    result.profile = profile;
    if (opts.scenario === 'profile-status') {
      enter('report');
      result.status = profile.status;
      result.explanation = profile.explanation;
      result.reason = profile.reason;
      result.advice = profile.advice;
      result.error_text = profile.error;
      await shoot(`profile-status-${profile.status ?? 'unknown'}.png`);
      if (profile.status === null) fail(`the profile page shows neither a profile nor an error`);
    } else {
      enter('profile-shows-user');
      if (profile.withAuthentication !== 'true') {
        fail(`withAuthentication is ${profile.withAuthentication}; error: ${profile.error}; reason: ${profile.reason}`);
      }
      if (opts.displayName && profile.displayName !== opts.displayName) {
        fail(`displayName is ${profile.displayName}, expected ${opts.displayName}`);
      }
      result.profile_screenshot = await shoot('profile.png');

      enter('sign-out');
      await page.goto(`${opts.frontend}/`);
      const href = await page.locator('a[href$="/.auth/logout"]').first().getAttribute('href');
      if (!href) fail('the home page has no /.auth/logout link');
      await page.goto(new URL(href, `${opts.frontend}/`).href, { waitUntil: 'load' });
      result.signed_out_at = redact(page.url());
      result.cookies_after_sign_out = (await context.cookies(opts.frontend))
        .filter((c) => c.name.startsWith('AppServiceAuthSession')).map((c) => c.name);

      enter('profile-after-sign-out');
      await page.goto(`${opts.frontend}/get-profile`);
      result.after_sign_out = await expectSignInPage('/get-profile after signing out');
    }
    delete result.current;
    result.ok = true;
  } catch (e) {
    result.ok = false;
    result.step = e instanceof StepFailure ? e.step : step;
    result.error = String(e && e.message ? e.message : e).split('\n').slice(0, 6).join('\n');
    result.url = redact(page.url());
    result.page_text = await page.evaluate(() => document.body ? document.body.innerText : '')
      .then((t) => t.slice(0, 4000)).catch(() => null);
    await shoot(`failure-${result.step}.png`).catch(() => {});
  }
  delete result.current;
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, step: 'internal', error: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
