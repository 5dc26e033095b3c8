// Reads through cutover's read ramp (run by tests/integration/test_orm_dual.py): cursors that
// read in pieces (pg-cursor: Execute with a row limit, then Flush; pg-query-stream, built on it),
// Sequelize's sync and type loader, TypeORM, postgres.js, and an enum column read again and
// again. Every answer is checked against the rows the test loaded (identical on both stores);
// with NEW_PORT set, the cursors' rows must also come from that store (the ramp served them).
// Prints one "ok <step>" per step; throws (exit 1) on a wrong answer.
'use strict';

const assert = require('node:assert/strict');
require('reflect-metadata');
const { Client } = require('pg');
const Cursor = require('pg-cursor');
const QueryStream = require('pg-query-stream');
const postgres = require('postgres');
const { Sequelize, DataTypes } = require('sequelize');
const { DataSource, EntitySchema } = require('typeorm');

const conn = require('./conn');
const newPort = process.env.NEW_PORT ? Number(process.env.NEW_PORT) : null;
const ROWS = 1000;
const MOODS = ['happy', 'sad', 'ok'];

function cursorRead(cursor, rows) {
  return new Promise((resolve, reject) => cursor.read(rows, (err, result) => (err ? reject(err) : resolve(result))));
}

function cursorClose(cursor) {
  return new Promise((resolve, reject) => cursor.close((err) => (err ? reject(err) : resolve())));
}

// Where the rows come from, when the test wants to know: the store's port.
const portColumn = newPort ? ', inet_server_port() AS port' : '';

function checkRow(row, id, withPort = true) {
  assert.equal(Number(row.id), id);
  assert.equal(row.mood, MOODS[id % 3]);
  if (newPort && withPort) assert.equal(row.port, newPort, `row ${id} served by the store on port ${row.port}`);
}

async function cursors() {
  const pg = new Client(conn);
  await pg.connect();
  const cursor = pg.query(new Cursor(`SELECT id, mood${portColumn} FROM people WHERE id <= $1 ORDER BY id`, [ROWS]));
  let seen = 0;
  let reads = 0;
  for (;;) {
    const rows = await cursorRead(cursor, 100);
    reads++;
    if (rows.length === 0) break;
    for (const row of rows) checkRow(row, ++seen);
  }
  assert.equal(seen, ROWS, 'rows read through pg-cursor');
  assert.equal(reads, ROWS / 100 + 1, 'pg-cursor reads');
  await cursorClose(cursor);
  // Closed after two reads of many: the connection goes on in step.
  const partial = pg.query(new Cursor(`SELECT id, mood${portColumn} FROM people ORDER BY id`));
  assert.equal((await cursorRead(partial, 10)).length, 10);
  assert.equal(Number((await cursorRead(partial, 10))[9].id), 20);
  await cursorClose(partial);
  let streamed = 0;
  const stream = pg.query(new QueryStream(`SELECT id, mood${portColumn} FROM people ORDER BY id`, [], { batchSize: 64 }));
  for await (const row of stream) checkRow(row, ++streamed);
  assert.equal(streamed, ROWS, 'rows read through pg-query-stream');
  const after = await pg.query('SELECT count(*)::int AS n FROM people');
  assert.equal(after.rows[0].n, ROWS);
  await pg.end();
  console.log('ok cursors');
}

async function enumReads() {
  const pg = new Client(conn);
  await pg.connect();
  for (let i = 0; i < 100; i++) {
    const r = await pg.query('SELECT id, mood FROM people WHERE id <= $1 ORDER BY id', [30]);
    assert.equal(r.rows.length, 30);
    r.rows.forEach((row, n) => checkRow(row, n + 1, false));
  }
  const agg = await pg.query("SELECT array_agg(mood ORDER BY id) AS moods, mood AS m FROM people WHERE mood = 'sad' GROUP BY mood");
  assert.equal(agg.rows[0].m, 'sad');
  await pg.end();
  console.log('ok enum column');
}

async function postgresJs() {
  const sql = postgres({ ...conn, max: 2, onnotice: () => {} });
  const rows = await sql`SELECT id, mood FROM people WHERE id <= ${50} ORDER BY id`;
  assert.equal(rows.length, 50);
  const counts = await Promise.all(MOODS.map((m) => sql`SELECT count(*)::int AS n FROM people WHERE mood = ${m}`));
  assert.equal(counts.reduce((sum, [c]) => sum + c.n, 0), ROWS);
  await sql.end();
  console.log('ok postgres.js');
}

async function sequelize() {
  const s = new Sequelize(conn.database, conn.user, '', {
    host: conn.host, port: conn.port, dialect: 'postgres', logging: false,
  });
  const Person = s.define('Person', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    mood: { type: DataTypes.ENUM(...MOODS), allowNull: false },
  }, { tableName: 'people', timestamps: false });
  // sync: the table exists, so nothing is created; Sequelize still reads the catalog (its
  // enum's values, the table's description) and loads the types of the store (its type loader).
  await s.sync();
  const sad = await Person.findAll({ where: { mood: 'sad' }, order: [['id', 'ASC']], limit: 5 });
  assert.deepEqual(sad.map((p) => Number(p.id)), [1, 4, 7, 10, 13]);
  assert.equal(await Person.count(), ROWS);
  const one = await Person.findOne({ where: { id: 42 } });
  assert.equal(one.mood, MOODS[42 % 3]);
  const described = await s.getQueryInterface().describeTable('people');
  assert.ok(described.mood, 'describeTable names the enum column');
  await s.close();
  console.log('ok sequelize');
}

async function typeorm() {
  const PersonSchema = new EntitySchema({
    name: 'Person', tableName: 'people',
    columns: {
      id: { type: 'bigint', primary: true, generated: true },
      mood: { type: 'enum', enum: MOODS, enumName: 'enum_people_mood' },
    },
  });
  const ds = new DataSource({
    type: 'postgres', host: conn.host, port: conn.port, username: conn.user, database: conn.database,
    entities: [PersonSchema], synchronize: false, logging: false,
  });
  await ds.initialize();
  const repo = ds.getRepository('Person');
  assert.equal(await repo.count(), ROWS);
  const happy = await repo.createQueryBuilder('p').where('p.mood = :m', { m: 'happy' }).orderBy('p.id').limit(3).getMany();
  assert.deepEqual(happy.map((p) => Number(p.id)), [3, 6, 9]);
  const found = await repo.find({ where: { id: 7 } });
  assert.equal(found[0].mood, MOODS[7 % 3]);
  // What `typeorm schema:log` reads: the catalog, on the authoritative store.
  const pending = await ds.driver.createSchemaBuilder().log();
  assert.ok(Array.isArray(pending.upQueries));
  await ds.destroy();
  console.log('ok typeorm');
}

// HIDDEN_WRITE: a cursor over a view whose function inserts. Ramped, it runs in a read-only
// transaction: PostgreSQL refuses it there (25006) after the first answer reached the client, so
// the client gets that error once; the shape is then known as a write, and the second cursor
// runs on the authoritative store, mirrored. Never a write on new alone.
async function hiddenWrite() {
  const pg = new Client(conn);
  await pg.connect();
  const outcomes = [];
  for (let i = 0; i < 2; i++) {
    const cursor = pg.query(new Cursor('SELECT n FROM noting ORDER BY n'));
    try {
      const rows = await cursorRead(cursor, 10);
      outcomes.push(`rows ${rows.length}`);
      await cursorClose(cursor);
    } catch (e) {
      outcomes.push(`error ${e.code}`);
    }
  }
  const r = await pg.query('SELECT 1 AS one');
  assert.equal(r.rows[0].one, 1);
  await pg.end();
  console.log(`ok hidden write: ${outcomes.join(', ')}`);
}

(async () => {
  const steps = process.env.HIDDEN_WRITE ? [hiddenWrite] : [cursors, enumReads, postgresJs, sequelize, typeorm];
  for (const step of steps) await step();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
