// The tutorial's portal steps from the start, clicked in the local portal: on two deployed web
// apps, Authentication -> Add identity provider -> Microsoft -> Create new app registration (the
// back end answering 401, the front end redirecting to sign-in); App registrations -> the front
// end's registration -> API permissions -> Add a permission -> My APIs -> the back end ->
// Delegated permissions -> user_impersonation -> Add permissions -> Grant admin consent; the back
// end's allowed client application; the front end's login parameters. A screenshot of each blade
// goes to --screenshot-dir.
//
//   node portal_tutorial.mjs --portal URL --user U --password P --front NAME --back NAME
//        --screenshot-dir DIR [--ca-file PEM]
//
// Prints one JSON line {ok, front_client, back_client, blades: [{name, url}], step?, error?}.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, redact } from './chromium.mjs';

function parseArgs(argv) {
  const names = { '--portal': 'portal', '--user': 'user', '--password': 'password', '--front': 'front',
    '--back': 'back', '--screenshot-dir': 'shots', '--ca-file': 'ca' };
  const opts = { ca: process.env.NODE_EXTRA_CA_CERTS || '' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    opts[key] = argv[i + 1];
  }
  for (const k of ['portal', 'user', 'password', 'front', 'back', 'shots']) {
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
  }, 150000);
  const browser = await launch({ ca: opts.ca, timeout: 15000 });
  const page = await (await browser.newContext({ viewport: { width: 420, height: 900 } })).newPage();
  page.setDefaultTimeout(15000);
  const blade = async (name) => {
    const shot = join(opts.shots, `${String(result.blades.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    result.blades.push({ name, url: redact(page.url()), screenshot: shot });
    const error = page.locator('.error');
    if (await error.count()) throw new Error(`${name}: ${await error.first().innerText()}`);
    return page.evaluate(() => document.body.innerText);
  };
  const click = async (locator) => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
  };
  const link = (name) => page.getByRole('link', { name, exact: true });
  const button = (name) => page.getByRole('button', { name, exact: true });
  const webApp = async (name, menu) => {
    await page.goto(opts.portal);
    await click(link(name));
    if (menu) await click(link(menu));
  };
  // Authentication -> (Remove identity provider) -> Add identity provider -> new registration.
  const addProvider = async (name, action) => {
    await webApp(name, 'Authentication');
    if (await button('Remove identity provider').count()) {
      await click(button('Remove identity provider'));
      await blade(`${name}-provider-removed`);
    }
    await page.check('input[name="type"][value="new"]');
    await page.selectOption('#action', action);
    await click(button('Add'));
    const text = await blade(`${name}-provider-added`);
    if (!text.includes('with the new app registration')) throw new Error(`${name}: not added`);
    return (await page.locator('#clientId').innerText()).trim();
  };
  try {
    result.step = 'sign in to the portal';
    await page.goto(opts.portal);
    if (await page.locator('input[name="passwd"]').count()) {
      await page.fill('input[name="login"]', opts.user);
      await page.fill('input[name="passwd"]', opts.password);
      await click(page.locator('button[type="submit"]'));
    }
    await blade('home');

    result.step = 'add the identity provider to the back end';
    result.back_client = await addProvider(opts.back, 'Return401');
    result.step = 'add the identity provider to the front end';
    result.front_client = await addProvider(opts.front, 'RedirectToLoginPage');

    result.step = 'API permissions of the front end';
    await grantBackEndScope(page, opts, click, link, button, blade);

    result.step = "the back end's allowed client application";
    await webApp(opts.back, 'Authentication');
    await page.fill('#e-clients', result.front_client);
    await click(button('Save'));
    await blade('back-end-allowed-client');

    result.step = "the front end's login parameters";
    await webApp(opts.front, 'Authentication');
    await page.fill('#e-login', `scope=openid offline_access api://${result.back_client}/user_impersonation`);
    await click(button('Save'));
    await blade('front-end-login-parameters');
    delete result.step;
    result.ok = true;
  } catch (e) {
    result.error = String(e && e.message ? e.message : e).split('\n').slice(0, 6).join('\n');
    result.url = redact(page.url());
    result.page_text = await page.evaluate(() => document.body ? document.body.innerText : '')
      .then((t) => t.slice(0, 3000)).catch(() => null);
    await page.screenshot({ path: join(opts.shots, 'failure.png'), fullPage: true }).catch(() => {});
  }
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

// App registrations -> the front end's registration -> API permissions -> Add a permission ->
// My APIs -> the back end -> user_impersonation -> Add permissions -> Grant admin consent.
async function grantBackEndScope(page, opts, click, link, button, blade) {
  await page.goto(new URL('/registrations', opts.portal).toString());
  await blade('app-registrations');
  await click(link(opts.front));
  await click(link('API permissions'));
  await blade('front-end-api-permissions');
  await click(link('Add a permission'));
  await click(link('My APIs'));
  await blade('request-api-permissions-my-apis');
  await click(link(opts.back));
  await page.locator('label', { hasText: 'user_impersonation' }).locator('input[name="scope"]').check();
  await blade('request-api-permissions-delegated');
  await click(button('Add permissions'));
  await blade('front-end-permission-added');
  await click(page.getByRole('button', { name: /^Grant admin consent for/ }));
  const text = await blade('front-end-admin-consent-granted');
  if (!text.includes('user_impersonation')) throw new Error('the permission is not listed');
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, step: 'internal', error: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
