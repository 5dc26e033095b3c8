// ORMs and drivers writing through cutover's dual-write (run by tests/integration/test_orm_dual.py,
// which then compares both stores row by row). Each writes into `items`, whose key, uuid,
// timestamp and random number the store picks, in the forms it uses by default: node-postgres
// (unnamed and named extended-protocol statements), postgres.js (named statements, pipelined),
// knex, Sequelize, TypeORM. Prints one "ok <step>" per step; throws (exit 1) on a wrong answer.
'use strict';

const assert = require('node:assert/strict');
require('reflect-metadata');
const { Client } = require('pg');
const postgres = require('postgres');
const knexFactory = require('knex');
const { Sequelize, DataTypes } = require('sequelize');
const { DataSource, EntitySchema } = require('typeorm');

const conn = require('./conn');

async function nodePostgres() {
  const pg = new Client(conn);
  await pg.connect();
  await pg.query('INSERT INTO items (note) VALUES ($1)', ['pg1']);
  const r = await pg.query('INSERT INTO items (note) VALUES ($1), ($2) RETURNING id, note', ['pg2', 'pg3']);
  assert.deepEqual(r.fields.map((f) => f.name), ['id', 'note']);
  assert.deepEqual(r.rows.map((row) => row.note), ['pg2', 'pg3']);
  for (let i = 0; i < 3; i++) {
    await pg.query({ name: 'ins', text: 'INSERT INTO items (note) VALUES ($1)', values: [`pgnamed${i}`] });
  }
  await pg.query('BEGIN');
  await pg.query('INSERT INTO items (note) VALUES ($1)', ['pgtxn']);
  await pg.query('UPDATE items SET r = random(), created_at = clock_timestamp() WHERE note = $1', ['pgtxn']);
  await pg.query('COMMIT');
  const none = await pg.query('INSERT INTO items (note) VALUES ($1)', ['pgnone']);
  assert.equal(none.rowCount, 1);
  assert.equal(none.rows.length, 0);
  await pg.end();
  console.log('ok node-postgres');
}

async function postgresJs() {
  const sql = postgres({ ...conn, max: 2, onnotice: () => {} });
  await sql`INSERT INTO items (note) VALUES (${'pjs1'})`;
  const [row] = await sql`INSERT INTO items ${sql({ note: 'pjs2' })} RETURNING *`;
  assert.equal(row.note, 'pjs2');
  assert.ok(row.id > 0 && row.u && row.created_at);
  // The same statement again and again: postgres.js prepares it once, then binds it.
  await Promise.all([...Array(10).keys()].map((i) => sql`INSERT INTO items (note) VALUES (${`pjsmany${i}`})`));
  await sql.begin(async (tx) => {
    await tx`INSERT INTO items (note) VALUES (${'pjstxn'})`;
    await tx`UPDATE items SET created_at = clock_timestamp() WHERE note = ${'pjstxn'}`;
  });
  await sql.end();
  console.log('ok postgres.js');
}

async function knex() {
  const k = knexFactory({ client: 'pg', connection: conn, pool: { min: 1, max: 2 } });
  await k('items').insert({ note: 'knex1' });
  const ids = await k('items').insert([{ note: 'knex2' }, { note: 'knex3' }]).returning('id');
  assert.equal(ids.length, 2);
  await k.transaction(async (trx) => {
    await trx('items').insert({ note: 'knex4' });
    await trx('items').where({ note: 'knex4' }).update({ created_at: k.fn.now() });
  });
  await k('items').insert({ note: 'knex1' }).onConflict('note').merge({ r: k.raw('random()') });
  await k.destroy();
  console.log('ok knex');
}

async function sequelize() {
  const s = new Sequelize(conn.database, conn.user, '', {
    host: conn.host, port: conn.port, dialect: 'postgres', logging: false,
  });
  const Item = s.define('Item', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    note: DataTypes.TEXT,
  }, { tableName: 'items', timestamps: false });
  const one = await Item.create({ note: 'seq1' });
  assert.ok(Number(one.id) > 0);
  await Item.bulkCreate([{ note: 'seq2' }, { note: 'seq3' }]);
  await s.transaction(async (t) => { await Item.create({ note: 'seq4' }, { transaction: t }); });
  await s.close();
  console.log('ok sequelize');
}

async function typeorm() {
  const ItemSchema = new EntitySchema({
    name: 'Item', tableName: 'items',
    columns: {
      id: { type: 'bigint', primary: true, generated: true },
      note: { type: 'text', nullable: true },
    },
  });
  const ds = new DataSource({
    type: 'postgres', host: conn.host, port: conn.port, username: conn.user, database: conn.database,
    entities: [ItemSchema], synchronize: false, logging: false,
  });
  await ds.initialize();
  const repo = ds.getRepository('Item');
  const saved = await repo.save({ note: 'typeorm1' });
  assert.ok(Number(saved.id) > 0);
  await repo.insert([{ note: 'typeorm2' }, { note: 'typeorm3' }]);
  await ds.transaction(async (m) => { await m.getRepository('Item').save({ note: 'typeorm4' }); });
  await ds.destroy();
  console.log('ok typeorm');
}

(async () => {
  for (const step of [nodePostgres, postgresJs, knex, sequelize, typeorm]) await step();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
