// Throughput of the `parse` operator on JSON events, against simdjson On-Demand reading the same
// fields of the same documents raw, in the same run.
//
//   build/bench/parse_bench [RECORDS] [ROUNDS]      (defaults: 200000 records, 7 rounds)
//
// The documents: a Kafka-style event of 14 top-level fields (~440 bytes), the demo's five
// (id, event_time, app, user.id, amount) plus strings, ints, doubles, a bool, three nested
// objects (one holding an array) and a string with escapes. `parse` extracts 12 of them
// (int64, ISO-8601 timestamp, strings, nested paths, doubles, bool); 7 values are not wanted.
//
// Weir: the parse operator built through BuiltinOperators() exactly as a task builds it
// (Validate, Create, Open), fed RowBatches of 1024 rows (value, topic, partition, offset) as a
// Kafka source would give it; every record must come out as a typed row.
// Raw: one simdjson::ondemand::parser over the same documents, each already in a padded
// buffer (no copy), reading the same 12 values with simdjson's typed getters (get_int64,
// get_string, get_double, get_bool) in document order, converting nothing and building no row.
//
// Each round times Weir then raw over all records; the table shows the best round of each
// (least disturbed by other load) and the median, by wall time and by the thread's CPU time.
// The ratio Weir / raw is of records per second.
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "weir/builtins.h"
#include "weir/config.h"
#include "weir/operator.h"
#include "weir/text_formats.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kParseConfig = R"({format: json, on_error: skip, fields: [
    {name: id, type: int64},
    {name: event_time, type: timestamp},
    {name: app, type: string},
    {name: event, type: string},
    {name: user, type: int64, path: user.id},
    {name: country, type: string, path: user.country},
    {name: amount, type: double},
    {name: currency, type: string},
    {name: quantity, type: int64},
    {name: os, type: string, path: device.os},
    {name: ok, type: bool},
    {name: latency_ms, type: double}]})";

// The seeds' event-time text, "2026-11-22T00:00:00.037Z", by the project's one time library.
std::string IsoTime(int64_t ms) {
  std::string out;
  if (!weir::FormatTime(ms, "%FT%T.%fZ", &out).ok()) std::abort();
  return out;
}

std::string EventJson(int64_t id) {
  static const char* kEvents[] = {"view", "click", "purchase", "refund"};
  static const char* kCountries[] = {"DE", "FR", "US", "BR", "JP", "IN"};
  static const char* kOs[] = {"android", "ios", "linux", "windows"};
  char session[40];
  snprintf(session, sizeof session, "%08llx-0b1c-4d2e-9f3a-%012llx",
           static_cast<unsigned long long>(id * 2654435761ULL % 0xffffffffULL),
           static_cast<unsigned long long>(id * 40503ULL));
  std::string s;
  s.reserve(448);
  s += "{\"id\":" + std::to_string(1000000 + id);
  s += ",\"event_time\":\"" + IsoTime(1795305600000 + id * 37) + "\"";
  s += ",\"app\":\"app" + std::to_string(id % 5) + "\"";
  s += ",\"event\":\"" + std::string(kEvents[id % 4]) + "\"";
  s += ",\"user\":{\"id\":" + std::to_string(id % 100000) + ",\"name\":\"user-" +
       std::to_string(id % 100000) + "\",\"country\":\"" + kCountries[id % 6] +
       "\",\"tags\":[\"new\",\"mobile\",\"beta\"]}";
  s += ",\"session\":\"" + std::string(session) + "\"";
  s += ",\"amount\":" + std::to_string(id % 1000) + "." + std::to_string(id % 100 / 10) + "5";
  s += ",\"currency\":\"EUR\"";
  s += ",\"quantity\":" + std::to_string(1 + id % 9);
  s += ",\"device\":{\"os\":\"" + std::string(kOs[id % 4]) +
       "\",\"version\":\"14.1\",\"model\":\"Pixel 8\"}";
  s += ",\"ip\":\"10." + std::to_string(id % 256) + "." + std::to_string(id / 256 % 256) + ".7\"";
  s += std::string(",\"ok\":") + (id % 7 ? "true" : "false");
  s += ",\"latency_ms\":" + std::to_string(id % 5000) + ".25";
  s += ",\"meta\":{\"source\":\"web\",\"retries\":" + std::to_string(id % 3) +
       ",\"note\":\"caf\\u00e9 \\\"special\\\"\"}}";
  return s;
}

struct Count : weir::Output {
  int64_t rows = 0;
  int64_t sum = 0;
  weir::Status Emit(weir::RowBatch& b) override {
    rows += static_cast<int64_t>(b.size());
    for (size_t i = 0; i < b.size(); ++i) sum += b[i][0].i + b[i][1].i;
    return weir::Status::Ok();
  }
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Timing {
  double wall = 0, cpu = 0;
};

template <typename F>
Timing Time(F&& f) {
  const double c0 = ThreadCpuSeconds();
  const auto t0 = Clock::now();
  f();
  Timing t;
  t.wall = std::chrono::duration<double>(Clock::now() - t0).count();
  t.cpu = ThreadCpuSeconds() - c0;
  return t;
}

// The raw baseline: the same 12 values through simdjson's own getters, in document order.
bool RawOne(simdjson::ondemand::parser& parser, const simdjson::padded_string& doc, int64_t* sum) {
  simdjson::ondemand::document d;
  if (parser.iterate(doc).get(d)) return false;
  simdjson::ondemand::object o;
  if (d.get_object().get(o)) return false;
  int64_t id, user, quantity;
  std::string_view event_time, app, event, country, currency, os;
  double amount, latency;
  bool ok;
  if (o["id"].get_int64().get(id)) return false;
  if (o["event_time"].get_string().get(event_time)) return false;
  if (o["app"].get_string().get(app)) return false;
  if (o["event"].get_string().get(event)) return false;
  simdjson::ondemand::object u;
  if (o["user"].get_object().get(u)) return false;
  if (u["id"].get_int64().get(user)) return false;
  if (u["country"].get_string().get(country)) return false;
  if (o["amount"].get_double().get(amount)) return false;
  if (o["currency"].get_string().get(currency)) return false;
  if (o["quantity"].get_int64().get(quantity)) return false;
  simdjson::ondemand::object dev;
  if (o["device"].get_object().get(dev)) return false;
  if (dev["os"].get_string().get(os)) return false;
  if (o["ok"].get_bool().get(ok)) return false;
  if (o["latency_ms"].get_double().get(latency)) return false;
  *sum += id + user + quantity + static_cast<int64_t>(amount + latency) + ok +
          static_cast<int64_t>(event_time.size() + app.size() + event.size() + country.size() +
                               currency.size() + os.size());
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t records = argc > 1 ? std::atoll(argv[1]) : 200000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  if (records <= 0 || rounds <= 0) {
    fprintf(stderr, "usage: parse_bench [RECORDS] [ROUNDS]\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);

  std::vector<std::string> docs;
  std::vector<simdjson::padded_string> padded;
  docs.reserve(static_cast<size_t>(records));
  padded.reserve(static_cast<size_t>(records));
  int64_t bytes = 0;
  for (int64_t i = 0; i < records; ++i) {
    docs.push_back(EventJson(i));
    padded.emplace_back(docs.back());
    bytes += static_cast<int64_t>(docs.back().size());
  }

  // The operator, as a task builds it.
  weir::Schema input({{"value", weir::Type::kString},
                      {"topic", weir::Type::kString},
                      {"partition", weir::Type::kInt64},
                      {"offset", weir::Type::kInt64}});
  auto config = weir::Config::Parse(kParseConfig, "vertex 'parse': config");
  if (!config.ok()) {
    fprintf(stderr, "config: %s\n", config.status().ToString().c_str());
    return 1;
  }
  const weir::OperatorFactory* factory = weir::BuiltinOperators().Find("parse");
  auto schema = factory->Validate(*config, input);
  auto op = factory->Create(*config, input);
  if (!schema.ok() || !op.ok()) {
    fprintf(stderr, "parse: %s %s\n", schema.status().ToString().c_str(),
            op.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<weir::Operator> parse = std::move(op).value();
  weir::OperatorContext ctx;
  ctx.job_id = "bench";
  ctx.vertex_id = "parse";
  if (weir::Status st = parse->Open(ctx); !st.ok()) {
    fprintf(stderr, "open: %s\n", st.ToString().c_str());
    return 1;
  }
  // Input batches built once, outside the timing (a source's work).
  std::vector<weir::RowBatch> batches((static_cast<size_t>(records) + 1023) / 1024);
  for (int64_t i = 0; i < records; ++i) {
    weir::Row& r = batches[static_cast<size_t>(i / 1024)].Append(4);
    r[0].SetString(docs[static_cast<size_t>(i)]);
    r[1].SetString("events");
    r[2].SetInt64(i % 8);
    r[3].SetInt64(i);
  }

  simdjson::ondemand::parser raw_parser;
  std::vector<Timing> weir_t, raw_t;
  for (int round = 0; round < rounds; ++round) {
    Count out;
    weir_t.push_back(Time([&] {
      for (weir::RowBatch& b : batches) {
        if (weir::Status st = parse->Process(b, out); !st.ok()) {
          fprintf(stderr, "process: %s\n", st.ToString().c_str());
          std::exit(1);
        }
      }
    }));
    if (out.rows != records) {
      fprintf(stderr, "parse gave %lld rows of %lld (dirty records?)\n",
              static_cast<long long>(out.rows), static_cast<long long>(records));
      return 1;
    }
    int64_t sum = 0, parsed = 0;
    raw_t.push_back(Time([&] {
      for (const simdjson::padded_string& d : padded) parsed += RawOne(raw_parser, d, &sum);
    }));
    if (parsed != records) {
      fprintf(stderr, "raw simdjson parsed %lld of %lld\n", static_cast<long long>(parsed),
              static_cast<long long>(records));
      return 1;
    }
    if (round == 0) {
      printf("checksums: weir %lld, raw %lld\n", static_cast<long long>(out.sum),
             static_cast<long long>(sum));
    }
  }

  auto pick = [](const std::vector<Timing>& v, bool cpu, bool best) {
    std::vector<double> x;
    for (const Timing& t : v) x.push_back(cpu ? t.cpu : t.wall);
    return best ? *std::min_element(x.begin(), x.end()) : Median(x);
  };
  const double mb = static_cast<double>(bytes) / 1e6;
  printf(
      "parse_bench: %lld records, %.1f MB (%.0f bytes/record), %d rounds; simdjson %d.%d.%d "
      "(active implementation: %s)\n",
      static_cast<long long>(records), mb, static_cast<double>(bytes) / records, rounds,
      simdjson::SIMDJSON_VERSION_MAJOR, simdjson::SIMDJSON_VERSION_MINOR,
      simdjson::SIMDJSON_VERSION_REVISION, simdjson::get_active_implementation()->name().c_str());
  printf("%-28s %12s %12s %12s %12s\n", "", "Weir MB/s", "Weir rec/s", "raw MB/s", "raw rec/s");
  for (const auto& [label, cpu, best] : std::vector<std::tuple<const char*, bool, bool>>{
           {"best round, wall", false, true},
           {"median round, wall", false, false},
           {"best round, thread CPU", true, true},
           {"median round, thread CPU", true, false}}) {
    const double w = pick(weir_t, cpu, best), r = pick(raw_t, cpu, best);
    printf("%-28s %12.1f %12.0f %12.1f %12.0f   Weir/raw %.2f\n", label, mb / w,
           static_cast<double>(records) / w, mb / r, static_cast<double>(records) / r, r / w);
  }
  printf("target: Weir/raw >= 0.70 (best round, thread CPU): %s\n",
         pick(raw_t, true, true) / pick(weir_t, true, true) >= 0.70 ? "met" : "NOT met");
  return parse->Close().ok() ? 0 : 1;
}
