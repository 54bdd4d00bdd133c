'use strict';
// The Express side of the interop tests: express-session on connect-redis or
// connect-pg-simple, configured exactly as examples/interop.rs configures this crate.
//
// Environment:
//   STORE              redis | pg
//   REDIS_URL          for STORE=redis (keys "sess:<id>")
//   DATABASE_URL       for STORE=pg (table "session", created when missing)
//   SECRETS            JSON array of secrets, the first one signs (default ["keyboard cat"])
//   COOKIE_MAX_AGE_MS  optional cookie.maxAge for new sessions (default: browser-session cookie)
//   PORT               default 0 (any free port)
//
// Prints "LISTENING <port>" on stdout once it accepts connections.
//
// Routes (JSON in, JSON out; every answer is the session as this request sees it):
//   GET  /session                          {id, cookie, data}
//   POST /update     {set, remove}         assign the keys of `set`, delete the keys in `remove`
//   POST /regenerate {set}                 new ID, keeping the data, then apply `set`
//   POST /maxage     {maxAge, set}         cookie.maxAge = maxAge (ms or null), then apply `set`
//   POST /destroy                          destroy the session

const express = require('express');
const session = require('express-session');

function env(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : v;
}

async function makeStore(kind) {
  if (kind === 'redis') {
    const { createClient } = require('redis');
    const { RedisStore } = require('connect-redis');
    const client = createClient({ url: env('REDIS_URL') });
    client.on('error', (err) => console.error('redis client:', err.message));
    await client.connect();
    return new RedisStore({ client, prefix: 'sess:' });
  }
  if (kind === 'pg') {
    const PgStore = require('connect-pg-simple')(session);
    return new PgStore({
      conString: env('DATABASE_URL'),
      tableName: 'session',
      createTableIfMissing: true,
    });
  }
  throw new Error(`STORE must be redis or pg, got ${JSON.stringify(kind)}`);
}

// The session as the request sees it: its ID, the cookie as stored, and the user data.
function view(req) {
  if (!req.session) return { id: null, cookie: null, data: {} };
  const { cookie, ...data } = JSON.parse(JSON.stringify(req.session));
  return { id: req.sessionID, cookie, data };
}

function apply(req, body) {
  const set = (body && body.set) || {};
  for (const key of Object.keys(set)) req.session[key] = set[key];
  for (const key of (body && body.remove) || []) delete req.session[key];
}

async function main() {
  const secrets = JSON.parse(env('SECRETS', '["keyboard cat"]'));
  const cookie = { path: '/', httpOnly: true, secure: 'auto', sameSite: 'lax' };
  const maxAge = env('COOKIE_MAX_AGE_MS');
  if (maxAge !== undefined) cookie.maxAge = Number(maxAge);

  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.use(
    session({
      store: await makeStore(env('STORE')),
      secret: secrets,
      name: 'connect.sid',
      resave: false,
      saveUninitialized: false,
      cookie,
    }),
  );

  app.get('/session', (req, res) => res.json(view(req)));

  app.post('/update', (req, res) => {
    apply(req, req.body);
    res.json(view(req));
  });

  app.post('/regenerate', (req, res, next) => {
    const { data } = view(req);
    req.session.regenerate((err) => {
      if (err) return next(err);
      Object.assign(req.session, data);
      apply(req, req.body);
      res.json(view(req));
    });
  });

  app.post('/maxage', (req, res) => {
    const ms = req.body ? req.body.maxAge : null;
    req.session.cookie.maxAge = ms === undefined ? null : ms;
    apply(req, req.body);
    res.json(view(req));
  });

  app.post('/destroy', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.json({ destroyed: true });
    });
  });

  app.use((err, req, res, _next) => {
    console.error(err);
    res.status(500).json({ error: String(err && err.message) });
  });

  const server = app.listen(Number(env('PORT', '0')), '127.0.0.1', () => {
    console.log(`LISTENING ${server.address().port}`);
  });
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
