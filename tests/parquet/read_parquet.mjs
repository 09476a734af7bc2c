// Runs SQL in an in-memory DuckDB (an independent Parquet reader, @duckdb/node-api pinned by
// package-lock.json) and prints each result row as one JSON line, for Weir's tests and bench.
//   node read_parquet.mjs "SELECT * FROM read_parquet('/tmp/x/*.parquet') ORDER BY id"
//   node read_parquet.mjs - < query.sql      (the SQL from stdin: long file lists)
// Values: numbers that fit a double exactly print as JSON numbers, other integers as strings;
// BLOBs as lowercase hex; timestamps as epoch milliseconds; strings as they are.
// Exit 1 with DuckDB's message on stderr if the query (or a file) fails.
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

function plain(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v) : v.toString();
  }
  if (typeof v !== 'object') return v;
  if ('micros' in v) return plain(v.micros / 1000n);  // TIMESTAMP / TIMESTAMPTZ
  if (v.bytes instanceof Uint8Array) return Buffer.from(v.bytes).toString('hex');  // BLOB
  return String(v);
}

const sql = process.argv[2] === '-' ? readFileSync(0, 'utf8') : process.argv[2];
if (!sql) {
  console.error('usage: node read_parquet.mjs "<sql>"');
  process.exit(2);
}
try {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const con = await instance.connect();
  const reader = await con.runAndReadAll(sql);
  const names = reader.columnNames();
  const out = [];
  for (const row of reader.getRows()) {
    const o = {};
    names.forEach((n, i) => { o[n] = plain(row[i]); });
    out.push(JSON.stringify(o));
  }
  process.stdout.write(out.length ? out.join('\n') + '\n' : '');
} catch (e) {
  console.error(String(e && e.message ? e.message : e));
  process.exit(1);
}
