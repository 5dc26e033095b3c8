// node-postgres (pg, pg-cursor) driver-compatibility checks for cutover.
//
// Usage: node test.js [host [port [user [dbname]]]]   (missing values come from PGHOST, PGPORT,
// PGUSER, PGDATABASE, which pg reads itself).  Prints "ok <name>" or "FAIL <name>: ..." per check
// and exits 1 on any failure.  The printed lines must not depend on whether the server is reached
// directly or through cutover: run_client.py compares both runs.
'use strict';

const assert = require('node:assert/strict');
const { Client } = require('pg');
const Cursor = require('pg-cursor');

// Every check gets this long; a proxy that withholds a reply becomes a FAIL, not a hang.
const CHECK_TIMEOUT_MS = 30000;

let failures = 0;
// Set once a check times out: the connection may still be waiting for that reply, so later
// checks on it would only queue behind it.
let stuck = false;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no reply within ${CHECK_TIMEOUT_MS} ms`)),
                       CHECK_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class TimedOut extends Error {}

function withCheckTimeout(promise, what) {
  return withTimeout(promise, what).catch((err) => {
    if (err instanceof Error && err.message.startsWith(`${what}: no reply within`)) {
      stuck = true;
      throw new TimedOut(err.message);
    }
    throw err;
  });
}

function describeError(err) {
  const code = err && err.code ? `SQLSTATE ${err.code}: ` : '';
  return `${code}${err && err.message ? err.message : String(err)}`.replace(/\n/g, ' ');
}

async function runCheck(client, name, check) {
  if (stuck) {
    failures++;
    console.log(`FAIL ${name}: skipped: the connection is stuck after an earlier timeout`);
    return false;
  }
  try {
    await withCheckTimeout(check(client), name);
    console.log(`ok ${name}`);
    return true;
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}: ${describeError(err)}`);
    // Leave no open or aborted transaction behind for the next check.
    if (!stuck) await withTimeout(client.query('ROLLBACK'), 'rollback after failure').catch(() => {});
    return false;
  }
}

async function expectSqlError(promise, sqlstate, what) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.code, sqlstate, `${what}: SQLSTATE ${err.code}, want ${sqlstate}`);
    return;
  }
  assert.fail(`${what} did not fail`);
}

async function scalar(client, text, values) {
  const res = await client.query({ text, values, rowMode: 'array' });
  assert.equal(res.rows.length, 1, `'${text}' returned ${res.rows.length} rows`);
  return res.rows[0][0];
}

async function recreateTable(client, table, columns) {
  await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.query(`CREATE TABLE ${table} (${columns})`);
}

// $1..$4 as text, int, null and Buffer (bytea), through the extended protocol (unnamed statement).
async function parameterisedQueries(client) {
  const text = "text 'quoted' \\ ünïcödé";
  const bytes = Buffer.from([0, 1, 0x27, 0x5c, 0xff]);
  const res = await client.query(
      'SELECT $1::text AS t, $2::int AS i, $3::text AS n, $4::bytea AS b, $2::int + 1 AS j',
      [text, 41, null, bytes]);
  assert.equal(res.rows.length, 1);
  const row = res.rows[0];
  assert.equal(row.t, text, 'text parameter');
  assert.equal(row.i, 41, 'int parameter');
  assert.equal(row.n, null, 'null parameter');
  assert.ok(Buffer.isBuffer(row.b) && row.b.equals(bytes), 'Buffer parameter');
  assert.equal(row.j, 42, 'reused parameter');
  assert.deepEqual(res.fields.map((f) => f.name), ['t', 'i', 'n', 'b', 'j']);

  await recreateTable(client, 'cl_node_params', 'id int PRIMARY KEY, note text, payload bytea');
  for (let i = 1; i <= 20; i++) {
    const ins = await client.query(
        'INSERT INTO cl_node_params (id, note, payload) VALUES ($1, $2, $3)',
        [i, i % 3 === 0 ? null : `note ${i}`, Buffer.from([i, 255 - i])]);
    assert.equal(ins.rowCount, 1, `insert ${i}`);
  }
  assert.equal(await scalar(client,
      "SELECT count(*) || ':' || count(note) || ':' || sum(get_byte(payload, 1)) FROM cl_node_params"),
      `20:14:${20 * 255 - 210}`);
}

// A named query: pg sends Parse for 'q1' once per connection, then Bind/Execute each time.
async function namedPreparedQuery(client) {
  for (let i = 1; i <= 10; i++) {
    const res = await client.query({
      name: 'q1',
      text: 'SELECT $1::int * 2 AS doubled, $2::text AS label',
      values: [i, `run ${i}`],
    });
    assert.equal(res.rows[0].doubled, 2 * i, `execution ${i}`);
    assert.equal(res.rows[0].label, `run ${i}`, `execution ${i} label`);
  }
  assert.equal(await scalar(client,
      "SELECT count(*)::int FROM pg_prepared_statements WHERE name = 'q1'"), 1,
      "'q1' is not a server-side prepared statement of this session");
}

function cursorRead(cursor, rows) {
  return new Promise((resolve, reject) => {
    cursor.read(rows, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function cursorClose(cursor) {
  return new Promise((resolve, reject) => cursor.close((err) => (err ? reject(err) : resolve())));
}

// pg-cursor sends Execute with max_rows=100 (followed by Flush, not Sync): the server answers
// PortalSuspended after each 100 rows until the 1000 rows are exhausted.
async function cursorPortalRowLimit(client) {
  await recreateTable(client, 'cl_node_cursor', 'id int PRIMARY KEY, note text');
  await client.query(
      "INSERT INTO cl_node_cursor SELECT g, 'row ' || g FROM generate_series(1, 1000) AS g");
  const cursor = client.query(
      new Cursor('SELECT id, note FROM cl_node_cursor WHERE id <= $1 ORDER BY id', [1000]));
  let seen = 0;
  let reads = 0;
  for (;;) {
    const rows = await cursorRead(cursor, 100);
    reads++;
    if (rows.length === 0) break;
    assert.equal(rows.length, 100, `read ${reads} returned ${rows.length} rows`);
    for (const row of rows) {
      seen++;
      assert.equal(row.id, seen, `row ${seen}`);
      assert.equal(row.note, `row ${seen}`, `row ${seen} note`);
    }
  }
  assert.equal(seen, 1000, 'rows read through the cursor');
  assert.equal(reads, 11, 'cursor reads');
  await cursorClose(cursor);

  // A cursor closed before the end, inside a transaction, then the connection goes on.
  await client.query('BEGIN');
  const partial = client.query(new Cursor('SELECT id FROM cl_node_cursor ORDER BY id'));
  const first = await cursorRead(partial, 100);
  const second = await cursorRead(partial, 100);
  assert.equal(first.length + second.length, 200, 'partial cursor rows');
  assert.equal(second[99].id, 200, 'partial cursor last row');
  await cursorClose(partial);
  assert.equal(await scalar(client, 'SELECT count(*)::int FROM cl_node_cursor'), 1000);
  await client.query('COMMIT');
}

// An error inside a transaction aborts it; ROLLBACK, then the connection is usable again.
async function errorInTransaction(client) {
  await recreateTable(client, 'cl_node_tx', 'id int PRIMARY KEY');
  await client.query('BEGIN');
  await client.query('INSERT INTO cl_node_tx VALUES ($1)', [1]);
  await expectSqlError(client.query('SELECT 1 / $1::int', [0]), '22012', 'division by zero');
  await expectSqlError(client.query('SELECT 1'), '25P02', 'statement in aborted transaction');
  await client.query('ROLLBACK');
  assert.equal(await scalar(client, 'SELECT count(*)::int FROM cl_node_tx'), 0,
      'rolled-back insert is visible');
  await client.query('INSERT INTO cl_node_tx VALUES ($1)', [2]);
  await expectSqlError(client.query('INSERT INTO cl_node_tx VALUES ($1)', [2]), '23505',
      'duplicate key outside a transaction');
  assert.equal(await scalar(client, 'SELECT string_agg(id::text, \',\') FROM cl_node_tx'), '2');
}

// A text with several statements goes through the simple protocol: one result per statement.
async function multiStatementText(client) {
  await recreateTable(client, 'cl_node_multi', 'id int PRIMARY KEY, note text');
  const results = await client.query(
      "SELECT 1 AS one; INSERT INTO cl_node_multi VALUES (1, 'a'), (2, 'b');"
      + ' SELECT id, note FROM cl_node_multi ORDER BY id; UPDATE cl_node_multi SET note = note');
  assert.ok(Array.isArray(results), 'multi-statement query did not return an array');
  assert.deepEqual(results.map((r) => r.command), ['SELECT', 'INSERT', 'SELECT', 'UPDATE']);
  assert.equal(results[0].rows[0].one, 1);
  assert.equal(results[1].rowCount, 2);
  assert.deepEqual(results[2].rows, [{ id: 1, note: 'a' }, { id: 2, note: 'b' }]);
  assert.equal(results[3].rowCount, 2);

  // An error stops the rest of the text, and the whole text was one implicit transaction.
  await expectSqlError(client.query(
      "INSERT INTO cl_node_multi VALUES (3, 'c'); SELECT 1 / 0; INSERT INTO cl_node_multi VALUES (4, 'd')"),
      '22012', 'multi-statement text with an error');
  assert.equal(await scalar(client,
      "SELECT string_agg(id::text, ',' ORDER BY id) FROM cl_node_multi"), '1,2');
}

async function main() {
  const [host, port, user, database] = process.argv.slice(2);
  const config = { application_name: 'cutover-clients-node', ssl: false };
  if (host) config.host = host;
  if (port) config.port = Number(port);
  if (user) config.user = user;
  if (database) config.database = database;
  const client = new Client(config);
  client.on('error', (err) => console.error(`connection error: ${describeError(err)}`));
  client.on('notice', () => {});
  try {
    await withTimeout(client.connect(), 'connect');
    console.log('ok connect');
  } catch (err) {
    console.log(`FAIL connect: ${describeError(err)}`);
    process.exit(1);
  }
  await runCheck(client, 'parameterised_queries', parameterisedQueries);
  await runCheck(client, 'named_prepared_query', namedPreparedQuery);
  await runCheck(client, 'cursor_portal_row_limit', cursorPortalRowLimit);
  await runCheck(client, 'error_in_transaction_then_rollback', errorInTransaction);
  await runCheck(client, 'multi_statement_text', multiStatementText);
  await withTimeout(client.end(), 'disconnect').catch((err) => {
    failures++;
    console.log(`FAIL disconnect: ${describeError(err)}`);
  });
  process.exit(failures === 0 ? 0 : 1);
}

main();
