// The connection both scripts use (orm.js, reads.js): where test_orm_dual.py points them.
'use strict';

module.exports = {
  host: process.env.PGHOST,
  port: Number(process.env.PGPORT),
  user: process.env.PGUSER || 'postgres',
  database: process.env.PGDATABASE,
};
