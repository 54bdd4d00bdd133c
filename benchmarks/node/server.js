// express + express-session serving the benchmark's two routes, with its usual options
// (resave and saveUninitialized off, as our crate's defaults). STORE picks the store:
// memory (express-session's MemoryStore), redis (connect-redis, REDIS_URL) or postgres
// (connect-pg-simple, DATABASE_URL, a pool of 10 like the other PostgreSQL contenders).
'use strict';

const express = require('express');
const session = require('express-session');

const SECRET = 'benchmark secret: long enough for any library\'s minimum length check';

async function makeStore(kind) {
  if (kind === 'memory') return undefined;
  if (kind === 'redis') {
    const { createClient } = require('redis');
    const { RedisStore } = require('connect-redis');
    const client = createClient({ url: process.env.REDIS_URL });
    await client.connect();
    return new RedisStore({ client });
  }
  if (kind === 'postgres') {
    const { Pool } = require('pg');
    const PgStore = require('connect-pg-simple')(session);
    const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE || 10) });
    return new PgStore({ pool, createTableIfMissing: true });
  }
  throw new Error(`unknown STORE ${kind}`);
}

async function main() {
  const store = await makeStore(process.env.STORE || 'memory');
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store }));
  app.get('/count', (req, res) => {
    const n = (req.session.n || 0) + 1;
    req.session.n = n;
    res.send(String(n));
  });
  app.get('/read', (req, res) => {
    res.send(String(req.session.n || 0));
  });
  app.listen(Number(process.env.PORT || 8080), '127.0.0.1');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
