// Weir's JSON lines writer (AppendJson, connectors/src/json_format.cc, on RapidJSON's Writer
// and appending to the caller's std::string) against RapidJSON's Writer used raw, into its own
// StringBuffer, on the same rows: the seeds' event shape (bench/seed_events.h), then the same
// with a text field of which two rows in three need escapes (quotes, tabs) and one in three is
// null. Base64 and the timestamp text are Weir's in both (RapidJSON has neither). Five rounds,
// each serialising every row with both; the median of the per-round speed ratios is reported.
// AppendJson was hand-written until RapidJSON measured 1.3-1.45x faster here (bench/README.md).
//
//   build/bench/json_format_bench [ROWS]
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "seed_events.h"
#include "weir/connectors.h"
#include "weir/text_formats.h"

namespace {

using Clock = std::chrono::steady_clock;

// The seeds' events plus a text field that needs escapes in two rows of three (null in the
// third).
weir::Schema WithNote() {
  weir::Schema s = weir::bench::SeedEventSchema();
  s.Add("note", weir::Type::kString);
  return s;
}

void FillEvents(weir::RowBatch& b, int64_t first, size_t n) {
  weir::bench::FillSeedEvents(b, first, n);
  for (size_t i = 0; i < b.size(); ++i) {
    weir::Row& r = b[i];
    r.fields.resize(9);
    const int64_t id = first + static_cast<int64_t>(i);
    if (id % 3 == 0) {
      r[8].SetNull();
    } else {
      r[8].SetString(id % 3 == 1 ? "a \"quoted\" note" : "a\ttabbed\tnote");
    }
  }
}

template <typename W>
void RapidRow(const weir::Row& row, const weir::Schema& schema, W& w) {
  w.StartObject();
  for (size_t i = 0; i < schema.size(); ++i) {
    const std::string& n = schema.field(i).name;
    w.Key(n.data(), static_cast<rapidjson::SizeType>(n.size()));
    const weir::Value& v = row[i];
    switch (v.type) {
      case weir::Type::kNull:
        w.Null();
        break;
      case weir::Type::kBool:
        w.Bool(v.b);
        break;
      case weir::Type::kInt64:
        w.Int64(v.i);
        break;
      case weir::Type::kDouble:
        if (std::isfinite(v.d)) {
          w.Double(v.d);
        } else {
          w.Null();
        }
        break;
      case weir::Type::kString:
      case weir::Type::kBytes:  // (bytes would need Weir's base64 first; none in these rows)
        w.String(v.s.data(), static_cast<rapidjson::SizeType>(v.s.size()));
        break;
      case weir::Type::kTimestamp: {
        char buf[weir::kTimestampTextMax];
        const size_t k = weir::FormatTimestamp(v.i, buf);
        w.String(buf, static_cast<rapidjson::SizeType>(k));
        break;
      }
    }
  }
  w.EndObject();
}

}  // namespace

void Measure(const weir::Schema& schema, int64_t rows) {
  weir::RowBatch b;
  std::string out;
  rapidjson::StringBuffer sb;
  std::vector<double> ratios;
  double hand_rate = 0, rapid_rate = 0;
  for (int round = 0; round < 5; ++round) {
    double th = 0, tr = 0;
    for (int64_t first = 0; first < rows; first += 1024) {
      FillEvents(b, first, static_cast<size_t>(std::min<int64_t>(1024, rows - first)));
      const auto t0 = Clock::now();
      out.clear();
      for (size_t i = 0; i < b.size(); ++i) {
        weir::AppendJson(b[i], schema, &out);
        out.push_back('\n');
      }
      const auto t1 = Clock::now();
      sb.Clear();
      rapidjson::Writer<rapidjson::StringBuffer> w(sb);
      for (size_t i = 0; i < b.size(); ++i) {
        w.Reset(sb);
        RapidRow(b[i], schema, w);
        sb.Put('\n');
      }
      const auto t2 = Clock::now();
      th += std::chrono::duration<double>(t1 - t0).count();
      tr += std::chrono::duration<double>(t2 - t1).count();
    }
    ratios.push_back(tr / th);
    hand_rate = std::max(hand_rate, static_cast<double>(rows) / th);
    rapid_rate = std::max(rapid_rate, static_cast<double>(rows) / tr);
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf("%s, %lld rows\n", schema.ToString().c_str(), static_cast<long long>(rows));
  std::printf("  AppendJson                  %6.2f M rows/s (best round)\n", hand_rate / 1e6);
  std::printf("  RapidJSON Writer, raw       %6.2f M rows/s (best round)\n", rapid_rate / 1e6);
  std::printf("  AppendJson speed / RapidJSON speed: median %.2fx (rounds %.2f .. %.2f)\n",
              ratios[ratios.size() / 2], ratios.front(), ratios.back());
}

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 2'000'000;
  // The rows have the note field too; the seeds' schema writes the first eight only.
  Measure(weir::bench::SeedEventSchema(), rows);
  Measure(WithNote(), rows);
  return 0;
}
