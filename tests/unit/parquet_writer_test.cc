// The Parquet writer (connectors/src/parquet_writer.h), read back by an independent reader:
// DuckDB (tests/parquet/read_parquet.mjs, @duckdb/node-api pinned by its package-lock.json,
// installed by deploy/test.sh). Every type and null pattern, every codec, pages and row groups,
// dictionaries, statistics, unicode, an empty file, and ten million rows.
#include "parquet_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "duckdb_reader.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

namespace fs = std::filesystem;
using testing::DuckDb;

std::string Hex(std::string_view s) {
  static const char* k = "0123456789ABCDEF";
  std::string h;
  for (unsigned char c : s) {
    h.push_back(k[c >> 4]);
    h.push_back(k[c & 15]);
  }
  return h;
}

std::string G17(double d) {
  if (std::isnan(d)) return "nan";
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", d);
  return b;
}

class ParquetWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("weir-parquet-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `rows` to `name`, a row group every `rows_per_group` rows.
  std::string Write(const std::string& name, const Schema& schema, const std::vector<Row>& rows,
                    const ParquetOptions& opts, size_t rows_per_group) {
    ParquetFileWriter w(schema, opts);
    std::string bytes;
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_TRUE(ParquetRowWritable(schema, rows[i], &reason_)) << reason_;
      w.Append(rows[i]);
      if (w.buffered_rows() >= static_cast<int64_t>(rows_per_group)) {
        EXPECT_TRUE(w.FlushRowGroup(&bytes).ok());
      }
    }
    EXPECT_TRUE(w.Finish(&bytes).ok());
    EXPECT_EQ(w.written_bytes(), static_cast<int64_t>(bytes.size()));
    EXPECT_EQ(w.rows(), static_cast<int64_t>(rows.size()));
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  fs::path dir_;
  std::string reason_;
};

Schema AllTypes() {
  return Schema({{"id", Type::kInt64},
                 {"b", Type::kBool},
                 {"i", Type::kInt64},
                 {"d", Type::kDouble},
                 {"s", Type::kString},
                 {"app", Type::kString},
                 {"by", Type::kBytes},
                 {"t", Type::kTimestamp}});
}

// Rows with every type, nulls in different patterns per column (none, all, alternating, runs
// of 7, 8 and 9, random), edge values and unicode.
std::vector<Row> AllTypeRows(size_t n) {
  static const std::vector<std::string> kStrings = {"",
                                                    "a",
                                                    "héllo wörld",
                                                    "日本語のテキスト",
                                                    "emoji 🎉🚀 and more",
                                                    "e\xCC\x81 combining",
                                                    "tab\tnew\nline \"quoted\" \\",
                                                    std::string(300, 'x'),
                                                    "\xF4\x8F\xBF\xBF max code point"};
  static const std::vector<std::string> kApps = {"web", "ios", "android", "tv"};
  static const std::vector<double> kDoubles = {0.0,
                                               -0.0,
                                               1.5,
                                               -2.25,
                                               1e308,
                                               -1e-308,
                                               4.9e-324,
                                               std::numeric_limits<double>::infinity(),
                                               -std::numeric_limits<double>::infinity(),
                                               std::nan(""),
                                               0.1,
                                               123456789.123456789};
  static const std::vector<int64_t> kInts = {0,
                                             1,
                                             -1,
                                             std::numeric_limits<int64_t>::min(),
                                             std::numeric_limits<int64_t>::max(),
                                             42,
                                             9007199254740993};
  static const std::vector<int64_t> kTimes = {0, 1700000000123, -86400001, 253402300799999,
                                              -62135596800000};
  std::mt19937_64 rng(7);
  std::vector<Row> rows;
  for (size_t r = 0; r < n; ++r) {
    Row row(8);
    row[0] = Value::Int64(static_cast<int64_t>(r));
    if (r % 2 == 0) row[1] = Value::Bool((r / 2) % 3 == 0);
    if ((r / 7) % 2 == 0) row[2] = Value::Int64(kInts[r % kInts.size()]);
    if ((r / 8) % 3 != 1) row[3] = Value::Double(kDoubles[r % kDoubles.size()]);
    if (rng() % 4 != 0) row[4] = Value::String(kStrings[(r * 7) % kStrings.size()]);
    if ((r / 9) % 2 == 0) row[5] = Value::String(kApps[r % kApps.size()]);
    if (r % 3 != 2) {
      std::string b;
      for (size_t k = 0; k < r % 6; ++k) b.push_back(static_cast<char>((r * 37 + k * 101) & 0xFF));
      row[6] = Value::Bytes(b);
    }
    // Column t: null for the whole second thousand rows (an all-null chunk when row groups are
    // 1000 rows).
    if (r / 1000 != 1)
      row[7] = Value::Timestamp(kTimes[r % kTimes.size()] + static_cast<int64_t>(r));
    rows.push_back(std::move(row));
  }
  return rows;
}

// The line read_parquet.mjs prints for ExpectedSql's columns.
std::string ExpectedLine(const Row& row) {
  auto str = [](const std::string& s) { return "\"" + s + "\""; };
  auto or_null = [&](const Value& v, const std::string& text) {
    return v.is_null() ? std::string("null") : str(text);
  };
  std::string l = "{\"id\":" + str(std::to_string(row[0].i));
  l += ",\"b\":" + or_null(row[1], row[1].b ? "true" : "false");
  l += ",\"i\":" + or_null(row[2], std::to_string(row[2].i));
  l += ",\"d\":" + or_null(row[3], G17(row[3].d));
  l += ",\"s\":" + or_null(row[4], Hex(row[4].s));
  l += ",\"app\":" + or_null(row[5], row[5].s);
  l += ",\"by\":" + or_null(row[6], Hex(row[6].s));
  l += ",\"t\":" + or_null(row[7], std::to_string(row[7].i));
  return l + "}";
}

std::string ExpectedSql(const std::string& files) {
  return "SELECT id::VARCHAR AS id, b::VARCHAR AS b, i::VARCHAR AS i, "
         "CASE WHEN isnan(d) THEN 'nan' ELSE printf('%.17g', d) END AS d, hex(s) AS s, app, "
         "hex(\"by\") AS \"by\", epoch_ms(t)::VARCHAR AS t FROM read_parquet('" +
         files + "') ORDER BY CAST(id AS BIGINT)";
}

struct Variant {
  ParquetCompression compression;
  bool dictionary;
  const char* name;
};

TEST_F(ParquetWriterTest, EveryTypeNullPatternCodecAndLayoutReadsBackInDuckDb) {
  const Schema schema = AllTypes();
  const std::vector<Row> rows = AllTypeRows(3500);
  const Variant variants[] = {{ParquetCompression::kNone, false, "none"},
                              {ParquetCompression::kSnappy, true, "snappy"},
                              {ParquetCompression::kZstd, true, "zstd"}};
  for (const Variant& v : variants) {
    ParquetOptions opts;
    opts.compression = v.compression;
    opts.dictionary = v.dictionary;
    opts.page_size = 1024;  // many pages per chunk
    Write(std::string(v.name) + ".parquet", schema, rows, opts, 1000);
  }
  std::vector<std::string> want;
  for (const Row& r : rows) want.push_back(ExpectedLine(r));
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    const std::string file = (dir_ / (std::string(v.name) + ".parquet")).string();
    EXPECT_EQ(DuckDb(ExpectedSql(file)), want);
  }

  // The schema: optional columns, the logical types, UTC millisecond timestamps.
  const std::string snappy = (dir_ / "snappy.parquet").string();
  EXPECT_EQ(
      DuckDb("SELECT name, type, repetition_type, converted_type, logical_type::VARCHAR AS lt "
             "FROM parquet_schema('" +
             snappy + "') WHERE name <> 'schema' ORDER BY name"),
      (std::vector<std::string>{
          R"j({"name":"app","type":"BYTE_ARRAY","repetition_type":"OPTIONAL","converted_type":"UTF8","lt":"StringType()"})j",
          R"j({"name":"b","type":"BOOLEAN","repetition_type":"OPTIONAL","converted_type":null,"lt":null})j",
          R"j({"name":"by","type":"BYTE_ARRAY","repetition_type":"OPTIONAL","converted_type":null,"lt":null})j",
          R"j({"name":"d","type":"DOUBLE","repetition_type":"OPTIONAL","converted_type":null,"lt":null})j",
          R"j({"name":"i","type":"INT64","repetition_type":"OPTIONAL","converted_type":null,"lt":null})j",
          R"j({"name":"id","type":"INT64","repetition_type":"OPTIONAL","converted_type":null,"lt":null})j",
          R"j({"name":"s","type":"BYTE_ARRAY","repetition_type":"OPTIONAL","converted_type":"UTF8","lt":"StringType()"})j",
          R"j({"name":"t","type":"INT64","repetition_type":"OPTIONAL","converted_type":"TIMESTAMP_MILLIS","lt":"TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=MilliSeconds(), MICROS=<null>, NANOS=<null>))"})j"}));
  EXPECT_EQ(DuckDb("SELECT typeof(t) AS t FROM read_parquet('" + snappy + "') LIMIT 1"),
            std::vector<std::string>{R"({"t":"TIMESTAMP WITH TIME ZONE"})"});

  // Statistics per column chunk, against the rows of each row group; the dictionary only where
  // it pays (app: four values; s: nine values, one of 300 bytes, still pays; id: no strings).
  for (int64_t g = 0; g < 4; ++g) {
    const size_t lo = g * 1000, hi = std::min<size_t>(rows.size(), lo + 1000);
    int64_t id_nulls = 0, t_nulls = 0;
    for (size_t r = lo; r < hi; ++r) {
      if (rows[r][7].is_null()) ++t_nulls;
    }
    const std::string q =
        "SELECT path_in_schema AS c, stats_null_count AS nulls, stats_min_value AS mn, "
        "stats_max_value AS mx, encodings AS enc FROM parquet_metadata('" +
        snappy + "') WHERE row_group_id = " + std::to_string(g) +
        " AND path_in_schema IN ('id', 't', 'app') ORDER BY c";
    const std::vector<std::string> got = DuckDb(q);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_NE(got[0].find("\"c\":\"app\""), std::string::npos);
    EXPECT_NE(got[0].find("\"mn\":\"android\",\"mx\":\"web\""), std::string::npos) << got[0];
    EXPECT_NE(got[0].find("RLE_DICTIONARY"), std::string::npos) << got[0];
    EXPECT_EQ(got[1], "{\"c\":\"id\",\"nulls\":" + std::to_string(id_nulls) + ",\"mn\":\"" +
                          std::to_string(lo) + "\",\"mx\":\"" + std::to_string(hi - 1) +
                          "\",\"enc\":\"RLE, PLAIN\"}");
    if (t_nulls == static_cast<int64_t>(hi - lo)) {
      EXPECT_EQ(got[2],
                "{\"c\":\"t\",\"nulls\":1000,\"mn\":null,\"mx\":null,\"enc\":\"RLE, PLAIN\"}");
    } else {
      EXPECT_NE(got[2].find("\"nulls\":" + std::to_string(t_nulls) + ","), std::string::npos)
          << got[2];
      // Their values: DuckDB shows them as text in its own format; the filter below uses them.
      EXPECT_NE(got[2].find("\"mn\":\""), std::string::npos) << got[2];
    }
  }
  // Filters that use the statistics return the same rows as a full scan.
  EXPECT_EQ(DuckDb("SELECT count(*) AS n FROM read_parquet('" + snappy + "') WHERE id >= 3400"),
            std::vector<std::string>{R"({"n":100})"});
}

TEST_F(ParquetWriterTest, DictionaryOnlyWhereItPaysAndWideIndices) {
  // 1000 distinct values over 50,000 rows (indices of 10 bits): a dictionary; 50,000 distinct
  // values: plain.
  const Schema schema({{"low", Type::kString}, {"high", Type::kString}});
  std::vector<Row> rows;
  for (int r = 0; r < 50000; ++r) {
    Row row(2);
    row[0] = Value::String("value-" + std::to_string((r * 7919) % 1000));
    row[1] = Value::String("unique-" + std::to_string(r));
    rows.push_back(std::move(row));
  }
  const std::string f = Write("dict.parquet", schema, rows, ParquetOptions(), 100000);
  EXPECT_EQ(DuckDb("SELECT path_in_schema AS c, encodings AS e FROM parquet_metadata('" + f +
                   "') ORDER BY c"),
            (std::vector<std::string>{R"({"c":"high","e":"RLE, PLAIN"})",
                                      R"({"c":"low","e":"RLE, RLE_DICTIONARY, PLAIN"})"}));
  EXPECT_EQ(DuckDb("SELECT count(DISTINCT low) AS a, count(DISTINCT high) AS b, "
                   "sum(CAST(split_part(low, '-', 2) AS BIGINT)) AS s FROM read_parquet('" +
                   f + "')"),
            std::vector<std::string>{R"({"a":1000,"b":50000,"s":24975000})"});
  std::vector<std::string> want;
  for (int r = 0; r < 50000; r += 4999) want.push_back("{\"low\":\"" + rows[r][0].s + "\"}");
  std::string ids;
  for (int r = 0; r < 50000; r += 4999) ids += (ids.empty() ? "" : ",") + std::to_string(r);
  EXPECT_EQ(DuckDb("SELECT low FROM (SELECT low, row_number() OVER () - 1 AS r FROM "
                   "read_parquet('" +
                   f + "')) WHERE r IN (" + ids + ") ORDER BY r"),
            want);
}

TEST_F(ParquetWriterTest, AFileWithoutRowsIsValid) {
  // The sink never writes one (an empty file is deleted, never committed); the writer can.
  const std::string f = Write("empty.parquet", AllTypes(), {}, ParquetOptions(), 10);
  EXPECT_EQ(DuckDb("SELECT count(*) AS n FROM read_parquet('" + f + "')"),
            std::vector<std::string>{R"({"n":0})"});
}

TEST_F(ParquetWriterTest, TenMillionRows) {
  const Schema schema({{"id", Type::kInt64},
                       {"app", Type::kString},
                       {"v", Type::kDouble},
                       {"ok", Type::kBool},
                       {"t", Type::kTimestamp}});
  static const char* kApps[] = {"web", "ios", "android", "tv", "car"};
  ParquetFileWriter w(schema, ParquetOptions());
  const std::string path = (dir_ / "big.parquet").string();
  std::ofstream out(path, std::ios::binary);
  std::string bytes;
  Row row(5);
  constexpr int64_t kRows = 10'000'000;
  int64_t nulls = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    row[0].SetInt64(r);
    row[1].SetString(kApps[r % 5]);
    if (r % 11 == 0) {
      row[2].SetNull();
      ++nulls;
    } else {
      row[2].SetDouble(static_cast<double>(r % 1000) * 0.5);
    }
    row[3].SetBool(r % 3 == 0);
    row[4].SetTimestamp(1700000000000 + r);
    w.Append(row);
    if (w.buffered_bytes() >= (64 << 20)) {
      ASSERT_TRUE(w.FlushRowGroup(&bytes).ok());
      out << bytes;
      bytes.clear();
    }
  }
  ASSERT_TRUE(w.Finish(&bytes).ok());
  out << bytes;
  out.close();
  double vsum = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    if (r % 11) vsum += static_cast<double>(r % 1000) * 0.5;
  }
  char want[512];
  std::snprintf(
      want, sizeof want,
      R"({"n":10000000,"ids":"49999995000000","apps":5,"nulls":%lld,"vs":"%.17g","oks":3333334,"tmin":1700000000000,"tmax":1700009999999})",
      static_cast<long long>(nulls), vsum);
  EXPECT_EQ(DuckDb("SELECT count(*) AS n, sum(id)::VARCHAR AS ids, count(DISTINCT app) AS apps, "
                   "count(*) - count(v) AS nulls, printf('%.17g', sum(v)) AS vs, "
                   "count(*) FILTER (WHERE ok) AS oks, epoch_ms(min(t)) AS tmin, "
                   "epoch_ms(max(t)) AS tmax FROM read_parquet('" +
                   path + "')"),
            std::vector<std::string>{want});
  const std::vector<std::string> groups =
      DuckDb("SELECT count(DISTINCT row_group_id) AS g FROM parquet_metadata('" + path + "')");
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_NE(groups[0], R"({"g":1})") << "expected several row groups";
}

TEST(ParquetSchemaTest, RefusesTypesItCannotHoldNamingTheField) {
  EXPECT_TRUE(CheckParquetSchema(AllTypes(), "vertex 'out' config").ok());
  const Status st = CheckParquetSchema(Schema({{"a", Type::kInt64}, {"nothing", Type::kNull}}),
                                       "vertex 'out' config");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find("field 'nothing' has type null"), std::string::npos)
      << st.ToString();
}

TEST(ParquetSchemaTest, RowsWithInvalidUtf8OrWrongTypesAreNotWritable) {
  const Schema schema({{"a", Type::kInt64}, {"app", Type::kString}, {"raw", Type::kBytes}});
  Row row(3);
  row[0] = Value::Int64(1);
  row[1] = Value::String("caf\xC3\xA9");
  row[2] = Value::Bytes("\xFF\xFE");  // bytes need not be UTF-8
  std::string reason;
  EXPECT_TRUE(ParquetRowWritable(schema, row, &reason));
  row[1] = Value::String("ab\xFF");
  EXPECT_FALSE(ParquetRowWritable(schema, row, &reason));
  EXPECT_EQ(
      reason,
      "field 'app' is not valid UTF-8 (byte 0xFF at offset 2), which a Parquet string must be");
  row[1] = Value::String("\xED\xA0\x80");  // a surrogate
  EXPECT_FALSE(ParquetRowWritable(schema, row, &reason));
  row[1] = Value::String("0123456789\xC0\xAF");  // overlong, after an 8-byte ASCII run
  EXPECT_FALSE(ParquetRowWritable(schema, row, &reason));
  EXPECT_NE(reason.find("offset 10"), std::string::npos) << reason;
  row[1].SetNull();
  row[0] = Value::Double(1.5);
  EXPECT_FALSE(ParquetRowWritable(schema, row, &reason));
  EXPECT_EQ(reason, "field 'a' holds a double value, not int64");
}

}  // namespace
}  // namespace weir
