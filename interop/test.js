'use strict';
// Interop tests: one user, two apps, one session. The Express app (node-app.js: the real
// express-session, connect-redis, connect-pg-simple) and the actix app on this crate
// (examples/interop.rs, built beforehand; its path in RUST_APP) share one store, one
// secret list and one cookie jar, and must agree on every value, every cookie and every
// stored record.
//
//   RUST_APP=target/debug/examples/interop REDIS_URL=redis://... DATABASE_URL=postgres://... \
//     node --test interop/test.js
//
// INTEROP_STORES (default "redis,pg") picks the stores. Every session a test creates is
// deleted from the store at the end.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');

const RUST_APP = process.env.RUST_APP;
const NODE_APP = path.join(__dirname, 'node-app.js');
const STORES = (process.env.INTEROP_STORES || 'redis,pg').split(',').map((s) => s.trim()).filter(Boolean);
const OLD = 'old secret: keyboard cat';
const NEW = 'new secret: 5f1d2c9a-rotated';
const DAY_S = 86400;

// Values of every JSON type, as a Node app would keep them.
const VALUES = {
  string: 'plain ascii',
  unicode: 'héllo wörld – 日本語 – Ελληνικά – emoji 🎉👩‍👩‍👧 – \u2028\u2029 – "quotes" \\ / \t\n\u0000\u001f',
  emptyString: '',
  'ключ с пробелом': 'unicode key',
  int: 42,
  negative: -17,
  zero: 0,
  maxSafe: 9007199254740991,
  minSafe: -9007199254740991,
  beyondSafe: 12345678901234567000,
  beyondU64: 2 ** 64,
  float: 3.141592653589793,
  sum: 0.1 + 0.2,
  price: 19.99,
  huge: 1e300,
  bigExp: 1e21,
  tiny: 5e-324,
  negExp: -1.5e-10,
  yes: true,
  no: false,
  nothing: null,
  emptyArray: [],
  emptyObject: {},
  array: [1, 'two', 3.5, false, null, [[]], { x: 1 }, 1e300],
  nested: {
    user: { id: 7, name: 'Zoë', roles: ['admin', 'dev'], prefs: { theme: 'dark', '': 'empty key' } },
    cookie: 'a nested "cookie" key is user data',
    deep: { a: { b: { c: { d: [1, { e: null }] } } } },
  },
  cart: [
    { sku: 'A-1', qty: 2, price: 19.99 },
    { sku: 'B-2', qty: 1, price: 1e21 },
  ],
};

const clone = (v) => JSON.parse(JSON.stringify(v));

// ---------------------------------------------------------------- processes and HTTP

// Starts one app; resolves once it prints "LISTENING <port>".
function startApp(side, env) {
  const [cmd, args] = side === 'node' ? [process.execPath, [NODE_APP]] : [RUST_APP, []];
  const child = spawn(cmd, args, {
    env: { ...process.env, PORT: '0', RUST_LOG: process.env.RUST_LOG || 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${side} app did not start within 30 s:\n${output}`));
    }, 30000);
    child.stderr.on('data', (d) => {
      output += d;
      if (process.env.INTEROP_VERBOSE) process.stderr.write(`[${side}] ${d}`);
    });
    child.stdout.on('data', (d) => {
      output += d;
      const m = /LISTENING (\d+)/.exec(output);
      if (m && !child.started) {
        child.started = true;
        clearTimeout(timer);
        const app = {
          side,
          env,
          base: `http://127.0.0.1:${m[1]}`,
          log: () => output,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) {
              child.kill('SIGTERM');
              const t = setTimeout(() => child.kill('SIGKILL'), 3000);
              await exited;
              clearTimeout(t);
            }
          },
        };
        resolve(app);
      }
    });
    child.once('exit', (code, signal) => {
      if (!child.started) {
        clearTimeout(timer);
        reject(new Error(`${side} app exited (${code ?? signal}) before listening:\n${output}`));
      }
    });
  });
}

// One request, with the jar's cookie; answers {status, setCookie: [..], body}.
function request(app, method, urlPath, { jar, body } = {}) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers = {};
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = payload.length;
  }
  const cookie = typeof jar === 'string' ? jar : jar && jar.header();
  if (cookie) headers.cookie = cookie;
  return new Promise((resolve, reject) => {
    const req = http.request(`${app.base}${urlPath}`, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const setCookie = res.headers['set-cookie'] || [];
        if (res.statusCode !== 200) {
          reject(new Error(`${app.side} ${method} ${urlPath}: ${res.statusCode} ${text}\n${app.log()}`));
          return;
        }
        if (jar && typeof jar !== 'string') jar.update(setCookie);
        resolve({ status: res.statusCode, setCookie, body: json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

// The browser's cookie jar: one connect.sid cookie, carried by hand.
class Jar {
  constructor(value = null) {
    this.value = value;
  }
  header() {
    return this.value === null ? undefined : `connect.sid=${this.value}`;
  }
  update(setCookies) {
    for (const line of setCookies) {
      const c = parseSetCookie(line);
      if (c.name !== 'connect.sid') continue;
      const removed = c.attrs['max-age'] === '0' || (c.attrs.expires && Date.parse(c.attrs.expires) <= Date.now());
      this.value = removed ? null : c.value;
    }
  }
  // The session ID the cookie carries (unverified).
  id() {
    return this.value === null ? null : idOfCookieValue(this.value);
  }
}

function parseSetCookie(line) {
  const [pair, ...rest] = line.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const a of rest) {
    const i = a.indexOf('=');
    if (i < 0) attrs[a.toLowerCase()] = true;
    else attrs[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs };
}

function idOfCookieValue(value) {
  const raw = decodeURIComponent(value);
  assert.ok(raw.startsWith('s:'), `a signed cookie: ${raw}`);
  return raw.slice(2, raw.lastIndexOf('.'));
}

// Node's cookie-signature, computed here: s:<id>.<base64 HMAC-SHA256, no padding>,
// then percent-encoded as the `cookie` package does.
function signedValue(id, secret) {
  const mac = crypto.createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '');
  return encodeURIComponent(`s:${id}.${mac}`);
}

// The session's Set-Cookie line from a response (exactly one).
function sessionSetCookie(res) {
  const lines = res.setCookie.filter((l) => l.startsWith('connect.sid='));
  assert.equal(lines.length, 1, `one connect.sid Set-Cookie, got ${JSON.stringify(res.setCookie)}`);
  return lines[0];
}

// A Set-Cookie line with its value and Expires masked, for comparing the two apps.
function maskSetCookie(line) {
  return line.replace(/^connect\.sid=[^;]*/, 'connect.sid=<value>').replace(/; Expires=[^;]*/i, '; Expires=<date>');
}

// ---------------------------------------------------------------- direct store access

async function openRaw(kind) {
  if (kind === 'redis') {
    const { createClient } = require('redis');
    const client = createClient({ url: process.env.REDIS_URL });
    client.on('error', () => {});
    await client.connect();
    return {
      env: {},
      // {text, json, expireAt (epoch s)} or null
      async get(id) {
        const text = await client.get(`sess:${id}`);
        if (text === null) return null;
        const ttl = await client.ttl(`sess:${id}`);
        return { text, json: JSON.parse(text), expireAt: Date.now() / 1000 + ttl, ttl };
      },
      async del(ids) {
        if (ids.length) await client.del(ids.map((id) => `sess:${id}`));
      },
      async close() {
        await client.close();
      },
    };
  }
  const { Client } = require('pg');
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  // connect-pg-simple writes `expire` in its connection's TimeZone; the Rust store is
  // told the same zone (PostgresStoreBuilder::time_zone).
  const zone = (await client.query('SHOW TimeZone')).rows[0].TimeZone;
  return {
    env: { PG_TIME_ZONE: zone },
    async get(id) {
      const r = await client.query(
        'SELECT sess::text AS text, extract(epoch from expire::timestamptz)::float8 AS expire FROM "session" WHERE sid = $1',
        [id],
      );
      if (r.rows.length === 0) return null;
      const { text, expire } = r.rows[0];
      return { text, json: JSON.parse(text), expireAt: Number(expire) };
    },
    async del(ids) {
      if (ids.length) await client.query('DELETE FROM "session" WHERE sid = ANY($1::text[])', [ids]);
    },
    async close() {
      await client.end();
    },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the tests

if (!RUST_APP) throw new Error('set RUST_APP to the built examples/interop binary (see scripts/interop.sh)');

for (const kind of STORES) {
  const urlVar = kind === 'redis' ? 'REDIS_URL' : 'DATABASE_URL';
  describe(`interop over ${kind === 'redis' ? 'Redis (connect-redis)' : 'PostgreSQL (connect-pg-simple)'}`, () => {
    let raw;
    const apps = { node: null, rust: null };
    const created = new Set(); // every session ID seen, deleted at the end

    // (Re)starts one side with these secrets (and optional cookie max age).
    async function restart(side, secrets, extra = {}) {
      if (apps[side]) await apps[side].stop();
      apps[side] = null;
      apps[side] = await startApp(side, { STORE: kind, SECRETS: JSON.stringify(secrets), ...raw.env, ...extra });
      return apps[side];
    }
    const node = () => apps.node;
    const rust = () => apps.rust;
    // GET /session, remembering the ID for clean-up.
    async function read(app, jar) {
      const res = await request(app, 'GET', '/session', { jar });
      if (res.body.id) created.add(res.body.id);
      return res;
    }
    async function post(app, route, jar, body) {
      const res = await request(app, 'POST', route, { jar, body });
      if (res.body.id) created.add(res.body.id);
      return res;
    }

    before(async () => {
      if (!process.env[urlVar]) throw new Error(`${urlVar} is not set (scripts/interop.sh expects the servers running)`);
      raw = await openRaw(kind);
      await Promise.all([restart('node', [OLD]), restart('rust', [OLD])]);
    });

    after(async () => {
      await Promise.all([apps.node && apps.node.stop(), apps.rust && apps.rust.stop()]);
      if (raw) {
        await raw.del([...created]);
        for (const id of created) assert.equal(await raw.get(id), null, `session ${id} cleaned up`);
        await raw.close();
      }
    });

    describe('one session, both apps', () => {
      const jar = new Jar();
      const expected = clone(VALUES);
      let firstId;
      let regeneratedId;

      it('1. Node creates a session holding every JSON type', async () => {
        const res = await post(node(), '/update', jar, { set: VALUES });
        firstId = res.body.id;
        assert.equal(jar.id(), firstId, 'Node sent the session cookie');
        assert.deepEqual(res.body.data, VALUES);
        const rec = await raw.get(firstId);
        assert.ok(rec, 'connect store wrote the record');
        const { cookie, ...data } = rec.json;
        assert.deepEqual(data, VALUES);
        assert.deepEqual(cookie, { originalMaxAge: null, expires: null, secure: false, httpOnly: true, path: '/', sameSite: 'lax' });
      });

      it('2. Rust reads every value, then changes some, adds one, removes one', async () => {
        const before = await read(rust(), jar);
        assert.equal(before.body.id, firstId, 'Rust accepted the Node-signed cookie and loaded the session');
        assert.deepEqual(before.body.data, VALUES);
        assert.deepEqual(before.body.cookie, { originalMaxAge: null, expires: null, secure: false, httpOnly: true, path: '/', sameSite: 'lax' });
        assert.equal(before.setCookie.length, 0, 'nothing to re-send for an unchanged session');

        const change = {
          set: {
            string: 'changed by Rust',
            int: 43,
            maxSafe: -9007199254740991,
            nested: { ...VALUES.nested, user: { ...VALUES.nested.user, roles: ['admin', 'dev', 'ops'], name: 'Zoë Ω' } },
            array: [...VALUES.array, 'appended'],
            addedByRust: { at: 'rust', n: [1, 2.5, -3e-7], ok: true, none: null, text: '漢字 ✓' },
          },
          remove: ['no', 'emptyObject'],
        };
        Object.assign(expected, clone(change.set));
        for (const key of change.remove) delete expected[key];

        const res = await post(rust(), '/update', jar, change);
        assert.equal(res.body.id, firstId);
        assert.deepEqual(res.body.data, expected);
        assert.equal(jar.id(), firstId);
        const rec = await raw.get(firstId);
        const { cookie, ...data } = rec.json;
        assert.deepEqual(data, expected, 'the record Rust wrote');
        assert.deepEqual(cookie, { originalMaxAge: null, expires: null, secure: false, httpOnly: true, path: '/', sameSite: 'lax' });
      });

      it('3. Node reads back every value Rust wrote', async () => {
        const res = await read(node(), jar);
        assert.equal(res.body.id, firstId);
        assert.deepEqual(res.body.data, expected);
        assert.ok(!('no' in res.body.data) && !('emptyObject' in res.body.data), 'removed keys stay removed');
        // And a change made in Node is seen by Rust again.
        const more = await post(node(), '/update', jar, { set: { nodeAgain: [VALUES.huge, VALUES.unicode] } });
        expected.nodeAgain = [VALUES.huge, VALUES.unicode];
        assert.deepEqual(more.body.data, expected);
        assert.deepEqual((await read(rust(), jar)).body.data, expected);
      });

      it('4a. Rust regenerates: Node sees the new ID with its data, the old ID is gone', async () => {
        const oldJar = new Jar(jar.value);
        const res = await post(rust(), '/regenerate', jar, { set: { regeneratedBy: 'rust' } });
        regeneratedId = res.body.id;
        assert.notEqual(regeneratedId, firstId);
        assert.equal(jar.id(), regeneratedId, 'Rust sent the new cookie');
        expected.regeneratedBy = 'rust';

        const seen = await read(node(), jar);
        assert.equal(seen.body.id, regeneratedId, 'Node accepted the Rust-signed cookie');
        assert.deepEqual(seen.body.data, expected);
        assert.equal(await raw.get(firstId), null, 'the old record is gone');
        const stale = await read(node(), oldJar);
        assert.notEqual(stale.body.id, firstId, 'Node: the old cookie is no session');
        assert.deepEqual(stale.body.data, {});
        const staleRust = await read(rust(), oldJar);
        assert.notEqual(staleRust.body.id, firstId, 'Rust: the old cookie is no session');
        assert.deepEqual(staleRust.body.data, {});
        assert.equal(await raw.get(firstId), null, 'reading a dead session does not revive it');
      });

      it('4b. Node destroys: Rust sees no session', async () => {
        const cookieBefore = jar.value;
        await post(node(), '/destroy', jar);
        assert.equal(jar.value, cookieBefore, 'express-session leaves the cookie in the browser');
        assert.equal(await raw.get(regeneratedId), null, 'the record is gone');
        const res = await read(rust(), jar);
        assert.notEqual(res.body.id, regeneratedId);
        assert.deepEqual(res.body.data, {});
        assert.equal(res.setCookie.length, 0, 'an empty new session sets no cookie (saveUninitialized false)');
        assert.equal(await raw.get(res.body.id), null, 'and stores nothing');
      });

      it('4c. and the other way round: Node regenerates, Rust destroys', async () => {
        const jar2 = new Jar();
        const first = (await post(rust(), '/update', jar2, { set: { cart: VALUES.cart } })).body.id;
        const res = await post(node(), '/regenerate', jar2, { set: { regeneratedBy: 'node' } });
        assert.notEqual(res.body.id, first);
        assert.equal(jar2.id(), res.body.id, 'Node sent the new cookie');
        assert.equal(await raw.get(first), null);
        const seen = await read(rust(), jar2);
        assert.equal(seen.body.id, res.body.id);
        assert.deepEqual(seen.body.data, { cart: VALUES.cart, regeneratedBy: 'node' });

        const gone = await post(rust(), '/destroy', jar2);
        assert.equal(gone.body.destroyed, true);
        assert.equal(jar2.value, null, 'Rust also clears the cookie (a deliberate difference)');
        assert.equal(await raw.get(res.body.id), null);
        const after = await read(node(), `connect.sid=${signedValue(res.body.id, OLD)}`);
        assert.notEqual(after.body.id, res.body.id);
        assert.deepEqual(after.body.data, {});
      });
    });

    describe('cookies and records agree byte for byte', () => {
      it('5a. both sign the same way and send the same Set-Cookie and the same record', async () => {
        const n = await post(node(), '/update', new Jar(), { set: { who: 'same' } });
        const r = await post(rust(), '/update', new Jar(), { set: { who: 'same' } });
        const nLine = sessionSetCookie(n);
        const rLine = sessionSetCookie(r);
        assert.equal(parseSetCookie(nLine).value, signedValue(n.body.id, OLD), 'Node: s:<id>.<HMAC>');
        assert.equal(parseSetCookie(rLine).value, signedValue(r.body.id, OLD), 'Rust: the same signature scheme and encoding');
        assert.equal(maskSetCookie(rLine), maskSetCookie(nLine), 'the same attributes in the same order');
        assert.equal(nLine, 'connect.sid=' + signedValue(n.body.id, OLD) + '; Path=/; HttpOnly; SameSite=Lax');

        const [nRec, rRec] = [await raw.get(n.body.id), await raw.get(r.body.id)];
        assert.deepEqual(rRec.json, nRec.json, 'the same record');
        assert.deepEqual(Object.keys(rRec.json.cookie), Object.keys(nRec.json.cookie), 'cookie fields in the same order');
        assert.equal(rRec.text, nRec.text, 'byte-identical JSON');
        // A browser-session cookie: the store keeps the record one day on both sides.
        const now = Date.now() / 1000;
        for (const rec of [nRec, rRec]) assert.ok(Math.abs(rec.expireAt - (now + DAY_S)) <= 3, `kept one day: ${rec.expireAt - now}`);
      });

      it('5b. cookie.maxAge set in Node is honoured by Rust, and back', async () => {
        const jar = new Jar();
        await post(node(), '/update', jar, { set: { remember: 'me' } });
        // Node: maxAge 1 h. express-session re-sends the cookie only when the data changed too.
        const t0 = Date.now();
        const n = await post(node(), '/maxage', jar, { maxAge: 3600000, set: { rememberedBy: 'node' } });
        const id = n.body.id;
        const nCookie = parseSetCookie(sessionSetCookie(n));
        const nExp = Date.parse(nCookie.attrs.expires);
        let rec = await raw.get(id);
        // express-session's maxAge setter stores expires − now as originalMaxAge, read a
        // moment after it set expires: 1 ms less when the clock ticked in between.
        const nodeMaxAge = rec.json.cookie.originalMaxAge;
        assert.ok(nodeMaxAge === 3600000 || nodeMaxAge === 3599999, `originalMaxAge ${nodeMaxAge}`);
        const stored = Date.parse(rec.json.cookie.expires);
        assert.ok(stored >= t0 + 3600000 && stored <= Date.now() + 3600000, 'expires = now + 1 h');
        assert.equal(nExp, Math.floor(stored / 1000) * 1000, 'Node: Expires is the stored expiry');
        assert.ok(Math.abs(rec.expireAt - stored / 1000) <= 2, `Node store expiry follows the cookie: ${rec.expireAt - stored / 1000}`);

        // Rust honours it: the same originalMaxAge, a rolling expiry about an hour away.
        const seen = await read(rust(), jar);
        assert.equal(seen.body.id, id);
        assert.equal(seen.body.cookie.originalMaxAge, nodeMaxAge);
        assert.ok(Math.abs(Date.parse(seen.body.cookie.expires) - stored) < 5000, 'Rust sees the Node expiry');
        assert.deepEqual(seen.body.data, { remember: 'me', rememberedBy: 'node' });

        // Rust: maxAge 2 h.
        const t1 = Date.now();
        const r = await post(rust(), '/maxage', jar, { maxAge: 7200000, set: { rememberedBy: 'rust' } });
        assert.equal(r.body.id, id);
        const rCookie = parseSetCookie(sessionSetCookie(r));
        rec = await raw.get(id);
        assert.equal(rec.json.cookie.originalMaxAge, 7200000);
        const stored2 = Date.parse(rec.json.cookie.expires);
        assert.ok(stored2 >= t1 + 7200000 && stored2 <= Date.now() + 7200000, 'expires = now + 2 h');
        assert.equal(Date.parse(rCookie.attrs.expires), Math.floor(stored2 / 1000) * 1000, 'Rust: Expires is the stored expiry');
        assert.ok(Math.abs(rec.expireAt - stored2 / 1000) <= 2, `Rust store expiry follows the cookie: ${rec.expireAt - stored2 / 1000}`);
        assert.equal(maskSetCookie(sessionSetCookie(r)), maskSetCookie(sessionSetCookie(n)), 'the same persistent Set-Cookie');

        const back = await read(node(), jar);
        assert.equal(back.body.cookie.originalMaxAge, 7200000);
        assert.ok(Math.abs(Date.parse(back.body.cookie.expires) - stored2) < 5000, 'Node sees the Rust expiry');
        assert.deepEqual(back.body.data, { remember: 'me', rememberedBy: 'rust' });

        // Back to a browser-session cookie, set in Node, seen by Rust.
        await post(node(), '/maxage', jar, { maxAge: null, set: { rememberedBy: 'nobody' } });
        const plain = await read(rust(), jar);
        assert.equal(plain.body.cookie.originalMaxAge, null);
        assert.equal(plain.body.cookie.expires, null);
      });

      it('5c. a short maxAge set on one side expires the session for the other', async () => {
        const MS = 3000;
        const a = new Jar();
        const b = new Jar();
        const viaNode = (await post(node(), '/maxage', a, { maxAge: MS, set: { short: 'node' } })).body.id;
        assert.equal((await read(rust(), a)).body.id, viaNode, 'alive at first');
        const viaRust = (await post(rust(), '/maxage', b, { maxAge: MS, set: { short: 'rust' } })).body.id;
        assert.equal((await read(node(), b)).body.id, viaRust, 'alive at first');
        // Each read renewed the expiry (rolling); wait until both are past it, plus the
        // stores' rounding up to a whole second.
        const ends = await Promise.all([viaNode, viaRust].map(async (id) => ((await raw.get(id))?.expireAt ?? 0) * 1000));
        await sleep(Math.max(...ends) - Date.now() + 1200);
        const ra = await read(rust(), a);
        assert.notEqual(ra.body.id, viaNode, 'Rust: the Node session expired');
        assert.deepEqual(ra.body.data, {});
        const nb = await read(node(), b);
        assert.notEqual(nb.body.id, viaRust, 'Node: the Rust session expired');
        assert.deepEqual(nb.body.data, {});
      });

      it('5d. a cookie max age configured on both apps gives the same cookie and record', async () => {
        const hour = { COOKIE_MAX_AGE_MS: '3600000' };
        await Promise.all([restart('node', [OLD], hour), restart('rust', [OLD], hour)]);
        const jar = new Jar();
        const n = await post(node(), '/update', jar, { set: { who: 'same' } });
        const r = await post(rust(), '/update', new Jar(), { set: { who: 'same' } });
        assert.equal(maskSetCookie(sessionSetCookie(r)), maskSetCookie(sessionSetCookie(n)));
        assert.match(sessionSetCookie(r), /; Expires=[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT;/);
        const [nRec, rRec] = [await raw.get(n.body.id), await raw.get(r.body.id)];
        assert.equal(rRec.json.cookie.originalMaxAge, 3600000);
        assert.deepEqual({ ...rRec.json.cookie, expires: 'x' }, { ...nRec.json.cookie, expires: 'x' });
        assert.deepEqual(Object.keys(rRec.json.cookie), Object.keys(nRec.json.cookie));
        for (const [res, rec] of [[n, nRec], [r, rRec]]) {
          const exp = Date.parse(rec.json.cookie.expires);
          assert.equal(Date.parse(parseSetCookie(sessionSetCookie(res)).attrs.expires), Math.floor(exp / 1000) * 1000);
          assert.ok(Math.abs(rec.expireAt - exp / 1000) <= 2);
        }
        // Rust loads the Node session with its max age and renews its expiry (rolling).
        const seen = await read(rust(), jar);
        assert.equal(seen.body.id, n.body.id);
        assert.equal(seen.body.cookie.originalMaxAge, 3600000);
        await Promise.all([restart('node', [OLD]), restart('rust', [OLD])]);
      });
    });

    describe('JavaScript-only strings', () => {
      // JavaScript strings may hold a lone UTF-16 surrogate (e.g. an emoji cut in half by
      // .slice()); JSON.stringify writes it as "\ud83c". Rust reads it as U+FFFD rather
      // than losing the whole session.
      it('a lone surrogate in a Node session loads as U+FFFD', async () => {
        const jar = new Jar();
        const id = (await post(node(), '/update', jar, { set: { ok: 'kept', cut: '🎉'.slice(0, 1) } })).body.id;
        assert.match((await raw.get(id)).text, /"cut":"\\ud83c"/);
        const res = await read(rust(), jar);
        assert.equal(res.body.id, id, 'Rust loads the session');
        assert.equal(res.body.data.ok, 'kept');
        assert.equal(res.body.data.cut, '\ufffd');
      });
    });

    describe('secret rotation', () => {
      // Creates a session on `app`, answering {id, jar, first} (`first`: the cookie as
      // first signed, kept while the jar follows any re-signing).
      async function sessionOn(app, tag) {
        const jar = new Jar();
        const res = await post(app, '/update', jar, { set: { tag } });
        assert.ok(jar.value, `${app.side} set a cookie`);
        return { id: res.body.id, jar, first: jar.value };
      }
      // Reads the session on `app`. Rust re-signs a cookie that an older secret signed
      // with its first one (resign_rotated, on by default); Node never re-sends it.
      async function accepts(app, s, tag) {
        const sent = s.jar.value;
        const res = await read(app, s.jar);
        assert.equal(res.body.id, s.id, `${app.side} (${app.env.SECRETS}) accepts the cookie`);
        assert.deepEqual(res.body.data, { tag });
        const newest = signedValue(s.id, JSON.parse(app.env.SECRETS)[0]);
        if (app.side === 'rust' && sent !== newest) {
          assert.equal(s.jar.value, newest, 'Rust re-signed the cookie with its first secret');
        } else {
          assert.equal(s.jar.value, sent, `${app.side} left the cookie as it was`);
        }
      }
      async function rejects(app, s) {
        const res = await read(app, s.jar);
        assert.notEqual(res.body.id, s.id, `${app.side} (${app.env.SECRETS}) rejects the cookie`);
        assert.deepEqual(res.body.data, {});
        assert.ok((await raw.get(s.id)) !== null, 'and leaves the session alone');
      }

      for (const [rotated, plain] of [['node', 'rust'], ['rust', 'node']]) {
        it(`5e. ${rotated} on [new, old], ${plain} on [old]`, async () => {
          await Promise.all([restart(rotated, [NEW, OLD]), restart(plain, [OLD])]);
          const fromPlain = await sessionOn(apps[plain], 'signed with old');
          assert.equal(fromPlain.jar.value, signedValue(fromPlain.id, OLD));
          await accepts(apps[rotated], fromPlain, 'signed with old');

          const fromRotated = await sessionOn(apps[rotated], 'signed with new');
          assert.equal(fromRotated.jar.value, signedValue(fromRotated.id, NEW), 'the first secret signs');
          await rejects(apps[plain], fromRotated);

          // Staged rotation: the new secret is added as a verifier first ([old, new]).
          await restart(plain, [OLD, NEW]);
          await accepts(apps[plain], fromRotated, 'signed with new');
          const staged = await sessionOn(apps[plain], 'signed with old again');
          assert.equal(staged.jar.value, signedValue(staged.id, OLD), 'still signing with old');
          await accepts(apps[rotated], staged, 'signed with old again');

          // Rotation done on both: [new, old] everywhere, old cookies still valid.
          await restart(plain, [NEW, OLD]);
          await accepts(apps[plain], fromPlain, 'signed with old');
          await accepts(apps[plain], fromRotated, 'signed with new');
          const done = await sessionOn(apps[plain], 'both rotated');
          assert.equal(done.jar.value, signedValue(done.id, NEW));
          await accepts(apps[rotated], done, 'both rotated');

          // Dropping old: only cookies signed with new survive, on both sides: a cookie
          // still signed with old is rejected, the same session's cookie that Rust
          // re-signed with new while rotated is accepted.
          assert.equal(fromPlain.jar.value, signedValue(fromPlain.id, NEW), 'Rust re-signed it');
          await Promise.all([restart(rotated, [NEW]), restart(plain, [NEW])]);
          for (const side of ['node', 'rust']) {
            await rejects(apps[side], { id: fromPlain.id, jar: new Jar(fromPlain.first) });
            await accepts(apps[side], fromPlain, 'signed with old');
            await accepts(apps[side], fromRotated, 'signed with new');
          }
        });
      }
    });

    describe('absolute lifetime', () => {
      // Rust with ABSOLUTE_TIMEOUT_MS stores the creation time as __sessionCreatedAt;
      // Node keeps it as ordinary session data, so the lifetime survives a trip through
      // Node, and Rust ends the session on time however active it is.
      it('6. a session Rust created keeps its creation time through Node, and Rust ends it on time', async () => {
        const LIFETIME = 3000;
        await Promise.all([restart('node', [OLD]), restart('rust', [OLD], { ABSOLUTE_TIMEOUT_MS: String(LIFETIME) })]);
        try {
          const jar = new Jar();
          const t0 = Date.now();
          const made = await post(rust(), '/update', jar, { set: { who: 'rust' } });
          const id = made.body.id;
          assert.equal(jar.id(), id, 'Rust sent the session cookie');
          assert.deepEqual(made.body.data, { who: 'rust' }, 'in Rust the creation time is not user data');
          let rec = await raw.get(id);
          const createdAt = rec.json.__sessionCreatedAt;
          assert.ok(Number.isInteger(createdAt), `the record has __sessionCreatedAt: ${rec.text}`);
          assert.ok(createdAt >= t0 - 1000 && createdAt <= Date.now() + 1000, `created now: ${createdAt - t0}`);

          // Node reads it, changes a key and saves: the creation time is kept as it was.
          const seen = await read(node(), jar);
          assert.equal(seen.body.id, id, 'Node loads the Rust session');
          assert.deepEqual(seen.body.data, { who: 'rust', __sessionCreatedAt: createdAt });
          const changed = await post(node(), '/update', jar, { set: { who: 'node' } });
          assert.equal(changed.body.id, id);
          rec = await raw.get(id);
          assert.equal(rec.json.who, 'node', 'Node saved its change');
          assert.equal(rec.json.__sessionCreatedAt, createdAt, 'with the same creation time');

          // Rust reads Node's change, within the lifetime.
          const back = await read(rust(), jar);
          assert.equal(back.body.id, id);
          assert.deepEqual(back.body.data, { who: 'node' });
          assert.ok(Date.now() < createdAt + LIFETIME, 'all of the above within the lifetime');

          // After the lifetime Rust refuses the session: a new ID, the old record gone.
          await sleep(createdAt + LIFETIME - Date.now() + 300);
          const after = await read(rust(), jar);
          assert.notEqual(after.body.id, id, 'Rust: a new session');
          assert.deepEqual(after.body.data, {});
          assert.equal(await raw.get(id), null, 'the old record is gone from the store');
        } finally {
          await restart('rust', [OLD]);
        }
      });
    });
  });
}
