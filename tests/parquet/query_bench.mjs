// DuckDB query times over the same rows in JSON lines and in Parquet (Weir's committing_file
// output, e.g. build/bench/file_sink_bench 4000000 1000000 DIR, which writes DIR/json and
// DIR/parquet partitioned as the demo does). Each query runs 3 times per format in one DuckDB
// (one thread, as the tests use); the best time is reported, and Parquet's as a ratio to JSON's.
//   node tests/parquet/query_bench.mjs DIR
import { DuckDBInstance } from '@duckdb/node-api';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node query_bench.mjs DIR');
  process.exit(2);
}
const sources = {
  json: `read_json('${dir}/json/dt=*/hour=*/app=*/*.jsonl', format = 'newline_delimited', hive_partitioning = false)`,
  parquet: `read_parquet('${dir}/parquet/dt=*/hour=*/app=*/*.parquet', hive_partitioning = false)`,
};
// Sums are rounded to cents: the order files are read in changes a double sum's last bits.
const queries = {
  'count(*)': (src) => `SELECT count(*) FROM ${src}`,
  'sum(amount) by app': (src) => `SELECT app, round(sum(amount), 2) FROM ${src} GROUP BY app ORDER BY app`,
  'one hour, count by user': (src) =>
    `SELECT count(DISTINCT "user") FROM ${src} WHERE event_time >= TIMESTAMPTZ '2026-11-22 05:00:00+00' AND event_time < TIMESTAMPTZ '2026-11-22 06:00:00+00'`,
  'point lookup by id': (src) => `SELECT id, app, "user", amount, record_id FROM ${src} WHERE id = 12345`,
};
const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
const con = await instance.connect();
console.log(`${'query'.padEnd(28)} ${'JSON ms'.padStart(9)} ${'Parquet ms'.padStart(11)} ${'Parquet/JSON'.padStart(13)}`);
for (const [name, q] of Object.entries(queries)) {
  const best = {};
  const answers = {};
  for (const [fmt, src] of Object.entries(sources)) {
    best[fmt] = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await con.runAndReadAll(q(src));
      best[fmt] = Math.min(best[fmt], performance.now() - t0);
      answers[fmt] = JSON.stringify(r.getRowsJson());
    }
  }
  const same = answers.json === answers.parquet ? '' : '  (answers differ!)';
  console.log(`${name.padEnd(28)} ${best.json.toFixed(0).padStart(9)} ${best.parquet.toFixed(0).padStart(11)} ${(best.parquet / best.json).toFixed(3).padStart(12)}x${same}`);
}
