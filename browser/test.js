'use strict';
// Browser test: examples/login.rs (built beforehand; its path in LOGIN_APP) in headless
// Chromium, Debian's (CHROMIUM, default /usr/bin/chromium), driven by playwright-core.
//
//   LOGIN_APP=target/debug/examples/login node --test browser/test.js
//
// (scripts/browser.sh installs Chromium, builds the example and runs this.) The app
// listens on a port the OS picks; every test has its own browser context or profile, so
// runs do not interfere. A screenshot of the logged-in page goes to
// target/browser/logged-in.png.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');

const LOGIN_APP = process.env.LOGIN_APP;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = path.join(__dirname, '..', 'target', 'browser', 'logged-in.png');
const COOKIE = 'connect.sid';
const DAY_S = 86400;
const TIMEOUT_MS = 10000;

let app; // { base, stop() }
let browser;

// ---------------------------------------------------------------- the app

// Starts the example on a free loopback port; resolves once it answers HTTP.
async function startApp() {
  assert.ok(LOGIN_APP, 'set LOGIN_APP to the built examples/login executable');
  const child = spawn(LOGIN_APP, [], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Last resort: never leave the server behind, even when this process dies abruptly.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
  };
  let output = '';
  child.stderr.on('data', (d) => (output += d));
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app printed no URL within 10 s:\n${output}`)), TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      output += d;
      const m = /listening on (http:\/\/\S+?)\/?\s/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the app exited (${code ?? signal}) before listening:\n${output}`));
    });
  }).catch(async (e) => {
    await stop();
    throw e;
  });
  app = { base, stop };
  await waitUntilAnswering(base);
}

async function waitUntilAnswering(base) {
  const deadline = Date.now() + TIMEOUT_MS;
  let last;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/`);
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the app at ${base} does not answer: ${last}`);
}

// ---------------------------------------------------------------- browser helpers

function launchOptions() {
  return { executablePath: CHROMIUM, headless: true, timeout: 30000 };
}

// A page in a fresh, isolated context (its own cookie jar), closed by the test's end.
async function freshPage(t) {
  const context = await browser.newContext();
  t.after(() => context.close());
  context.setDefaultTimeout(TIMEOUT_MS);
  return { context, page: await context.newPage() };
}

async function login(page, user, options) {
  await page.goto(`${app.base}/`);
  await submitLogin(page, user, options);
}

// Fills in and submits the login form the page shows.
async function submitLogin(page, user, { remember = false } = {}) {
  await page.getByLabel('User name').fill(user);
  if (remember) await page.getByLabel('Remember me').check();
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#user').waitFor();
}

// The name shown as logged in, or null when the page shows the login form.
async function shownUser(page) {
  if (await page.locator('input[name="user"]').count()) return null;
  return page.locator('#user').textContent();
}

async function sessionCookie(context) {
  return (await context.cookies(app.base)).find((c) => c.name === COOKIE);
}

function plant(context, value) {
  return context.addCookies([{ name: COOKIE, value, url: `${app.base}/` }]);
}

// A persistent profile in a new temporary directory, removed at the test's end.
function profileDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'actix-express-session-browser-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function launchProfile(dir) {
  const context = await chromium.launchPersistentContext(dir, launchOptions());
  context.setDefaultTimeout(TIMEOUT_MS);
  return { context, page: context.pages()[0] || (await context.newPage()) };
}

// Logs in within a persistent profile, closes the browser (Chromium writes its cookie
// database and drops the session cookies it holds), starts it again on the same profile
// and answers the cookie before the restart and the user shown after it.
async function loginAndRestart(t, remember) {
  const dir = profileDir(t);
  let { context, page } = await launchProfile(dir);
  let before;
  try {
    await login(page, 'grace', { remember });
    before = await sessionCookie(context);
  } finally {
    await context.close();
  }
  ({ context, page } = await launchProfile(dir));
  try {
    await page.goto(`${app.base}/`);
    return { before, after: await sessionCookie(context), user: await shownUser(page) };
  } finally {
    await context.close();
  }
}

// ---------------------------------------------------------------- tests

// Every test has its own cookie jar, so they run side by side.
describe('examples/login.rs in Chromium', { concurrency: 4 }, () => {
  before(async () => {
    await startApp();
    browser = await chromium.launch(launchOptions());
  });

  after(async () => {
    await browser?.close();
    await app?.stop();
  });

  it('logging in shows the user name and a logout button', async (t) => {
    const { page } = await freshPage(t);
    await login(page, 'Ada Lovelace');
    assert.equal(await shownUser(page), 'Ada Lovelace');
    assert.equal(await page.locator('h1').textContent(), 'Hello, Ada Lovelace');
    assert.ok(await page.getByRole('button', { name: 'Log out' }).isVisible());
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    assert.ok(fs.statSync(SCREENSHOT).size > 1000, `a screenshot in ${SCREENSHOT}`);
  });

  it('the user name is shown as text, never as markup', async (t) => {
    const { page } = await freshPage(t);
    const name = `<b>Ada</b> & "Lovelace" <img src=x onerror="document.title='owned'">`;
    await login(page, name);
    assert.equal(await shownUser(page), name);
    assert.equal(await page.locator('b, img').count(), 0);
    assert.equal(await page.title(), 'Logged in');
  });

  it('a reload keeps the user logged in', async (t) => {
    const { page } = await freshPage(t);
    await login(page, 'ada');
    await page.reload();
    assert.equal(await shownUser(page), 'ada');
  });

  it('"remember me" survives a browser restart', async (t) => {
    const { before, after, user } = await loginAndRestart(t, true);
    const days = (before.expires - Date.now() / 1000) / DAY_S;
    assert.ok(days > 29.9 && days < 30.01, `a persistent cookie for 30 days, expires in ${days} days`);
    assert.equal(after?.value, before.value, 'the same cookie after the restart');
    assert.equal(user, 'grace');
  });

  it('a plain login does not survive a browser restart', async (t) => {
    const { before, after, user } = await loginAndRestart(t, false);
    assert.equal(before.expires, -1, 'a browser-session cookie (no Expires, no Max-Age)');
    // Chromium really drops session cookies when it closes, also in a persistent profile
    // (checked with Debian's Chromium); so this is the user's own experience, not a model.
    assert.equal(after, undefined, 'no session cookie after the restart');
    assert.equal(user, null, 'the login form again');
  });

  it('logging out shows the login form again', async (t) => {
    const { context, page } = await freshPage(t);
    await login(page, 'ada');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('User name').waitFor();
    assert.equal(await shownUser(page), null);
    assert.equal(await sessionCookie(context), undefined, 'the cookie is removed');
  });

  it('a cookie captured before logout does not log in again', async (t) => {
    const { context, page } = await freshPage(t);
    await login(page, 'ada');
    const captured = await sessionCookie(context);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('User name').waitFor();

    const replay = await freshPage(t);
    await replay.context.addCookies([captured]);
    assert.equal((await sessionCookie(replay.context)).value, captured.value);
    await replay.page.goto(`${app.base}/`);
    assert.equal(await shownUser(replay.page), null, 'the destroyed session is gone');
  });

  it('a forged cookie planted before login is replaced on login', async (t) => {
    const { context, page } = await freshPage(t);
    const forged = 's%3Aattacker-chosen-session-id.bm90IGEgcmVhbCBzaWduYXR1cmU';
    await plant(context, forged);
    await login(page, 'ada');
    const after = await sessionCookie(context);
    assert.notEqual(after.value, forged);
    assert.ok(after.value.startsWith('s%3A'), `a signed session ID, got ${after.value}`);
  });

  it("an attacker's valid session planted before login is replaced, and gains nothing", async (t) => {
    // Session fixation: the attacker logs in, then plants their own valid cookie on the victim.
    const attacker = await freshPage(t);
    await login(attacker.page, 'mallory');
    const planted = (await sessionCookie(attacker.context)).value;

    // The victim opens the login page; the cookie is planted while the form is open.
    const victim = await freshPage(t);
    await victim.page.goto(`${app.base}/`);
    await plant(victim.context, planted);
    await submitLogin(victim.page, 'ada');
    assert.notEqual((await sessionCookie(victim.context)).value, planted);
    assert.equal(await shownUser(victim.page), 'ada');

    await attacker.page.reload();
    assert.equal(await shownUser(attacker.page), null, "the attacker's ID no longer logs in");
  });

  it('the session cookie is HttpOnly, SameSite=Lax and hidden from document.cookie', async (t) => {
    const { context, page } = await freshPage(t);
    await context.addCookies([{ name: 'visible', value: 'yes', url: `${app.base}/` }]);
    await login(page, 'ada');
    const cookie = await sessionCookie(context);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.secure, false, 'Secure::Auto: not Secure over plain HTTP');
    const seen = await page.evaluate(() => document.cookie);
    assert.equal(seen, 'visible=yes', 'scripts see other cookies but not the session cookie');
  });
});
