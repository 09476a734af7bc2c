// weir-kafka-tool: a small librdkafka client for demos and tests against a Kafka broker (the dev
// broker or a real one), so that tests need no Python Kafka client.
//
//   produce   --bootstrap B --topic T (--count N [--start S] [--events [--bad-every K]] | --stdin)
//             [--rate R]
//             generated records: key "<id>", value {"id":<id>}, timestamp now; or one record
//             per stdin line (no key). Exits 0 only if every record was acknowledged.
//   committed --bootstrap B --group G --topic T
//             the group's committed offsets: {"<partition>": offset|null, ...}
//   offsets   --bootstrap B --topic T
//             low and high watermarks: {"<partition>": [low, high], ...}
//
// Single-threaded; errors go to stderr with exit code 1 (2 for bad usage).
#include <CLI/CLI.hpp>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

int delivery_errors = 0;
std::string first_delivery_error;

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err) {
    if (delivery_errors++ == 0) first_delivery_error = rd_kafka_err2str(m->err);
  }
}

rd_kafka_t* NewClient(rd_kafka_type_t type, const std::string& bootstrap, const std::string& group) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "%s\n", err);
      std::exit(2);
    }
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "3");
  if (type == RD_KAFKA_PRODUCER) {
    set("linger.ms", "5");
    // Retries after a broker outage must not write a record twice: tests count on exactly n
    // records in the topic (the mock cluster checks idempotent producers' sequences too).
    set("enable.idempotence", "true");
    rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  } else {
    set("group.id", group.empty() ? "weir-kafka-tool" : group);
    set("enable.auto.commit", "false");
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", err);
    std::exit(1);
  }
  return rk;
}

// The number of partitions of `topic`, or -1 (message on stderr).
int PartitionCount(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  int n = -1;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  if (err) {
    std::fprintf(stderr, "metadata of %s: %s\n", topic.c_str(), rd_kafka_err2str(err));
  } else if (md->topic_cnt != 1 || md->topics[0].err) {
    std::fprintf(stderr, "topic %s: %s\n", topic.c_str(),
                 md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
  } else {
    n = md->topics[0].partition_cnt;
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return n;
}

// Sample events for the ETL demo and tests: JSON with an ISO-8601 event time (base + id *
// step), an app, a nested user id and an amount. With bad_every = k, every k-th record (ids
// k-1, 2k-1, ...) is malformed in one of three ways, so dirty-data handling has work to do.
struct EventOptions {
  bool events = false;
  int64_t bad_every = 0;
  int64_t base_ms = 1795305600000;  // 2026-11-22T00:00:00Z
  int64_t step_ms = 500;
};

std::string IsoTime(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf, n) + "." + std::to_string(1000 + ms % 1000).substr(1) + "Z";
}

std::string EventJson(int64_t id, const EventOptions& o) {
  const std::string ts = IsoTime(o.base_ms + id * o.step_ms);
  const std::string app = "app" + std::to_string(id % 5);
  const std::string amount = std::to_string(id % 100) + "." + std::to_string(id % 10) + "5";
  if (o.bad_every > 0 && id % o.bad_every == o.bad_every - 1) {
    switch ((id / o.bad_every) % 3) {
      case 0:  // truncated
        return "{\"id\":" + std::to_string(id) + ",\"event_time\":\"" + ts + "\",\"app";
      case 1:  // a field of the wrong type
        return "{\"id\":" + std::to_string(id) + ",\"event_time\":\"" + ts + "\",\"app\":\"" +
               app + "\",\"user\":{\"id\":" + std::to_string(id % 1000) +
               "},\"amount\":\"n/a\"}";
      default:  // no event time
        return "{\"id\":" + std::to_string(id) + ",\"app\":\"" + app + "\",\"user\":{\"id\":" +
               std::to_string(id % 1000) + "},\"amount\":" + amount + "}";
    }
  }
  return "{\"id\":" + std::to_string(id) + ",\"event_time\":\"" + ts + "\",\"app\":\"" + app +
         "\",\"user\":{\"id\":" + std::to_string(id % 1000) + "},\"amount\":" + amount + "}";
}

int Produce(const std::string& bootstrap, const std::string& topic, int64_t count, int64_t start,
            double rate, bool from_stdin, const EventOptions& events) {
  rd_kafka_t* rk = NewClient(RD_KAFKA_PRODUCER, bootstrap, "");
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t sent = 0;
  std::string key, value, line;
  auto send = [&](const std::string& k, const std::string& v, bool with_key) {
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                            const_cast<char*>(v.data()), v.size(), with_key ? k.data() : nullptr,
                            with_key ? k.size() : 0, nullptr) != 0) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        return false;
      }
      rd_kafka_poll(rk, 50);
    }
    rd_kafka_poll(rk, 0);
    ++sent;
    if (rate > 0) {
      const auto due = t0 + std::chrono::duration<double>(static_cast<double>(sent) / rate);
      if (due > std::chrono::steady_clock::now()) {
        rd_kafka_poll(rk, 0);
        std::this_thread::sleep_until(due);
      }
    }
    return true;
  };
  bool ok = true;
  if (from_stdin) {
    while (ok && std::getline(std::cin, line)) ok = send(key, line, false);
  } else {
    for (int64_t id = start; ok && id < start + count; ++id) {
      key = std::to_string(id);
      value = events.events ? EventJson(id, events) : "{\"id\":" + key + "}";
      ok = send(key, value, true);
    }
  }
  rd_kafka_flush(rk, 60000);
  const int left = rd_kafka_outq_len(rk);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  if (!ok) return 1;
  if (left > 0 || delivery_errors > 0) {
    std::fprintf(stderr, "produce: %d record(s) not delivered (%s), %d still queued\n",
                 delivery_errors, first_delivery_error.c_str(), left);
    return 1;
  }
  std::fprintf(stderr, "produced %lld record(s) to %s\n", static_cast<long long>(sent),
               topic.c_str());
  return 0;
}

int Committed(const std::string& bootstrap, const std::string& group, const std::string& topic) {
  rd_kafka_t* rk = NewClient(RD_KAFKA_CONSUMER, bootstrap, group);
  int rc = 0;
  const int n = PartitionCount(rk, topic);
  if (n < 0) {
    rc = 1;
  } else {
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; ++p) rd_kafka_topic_partition_list_add(l, topic.c_str(), p);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 15000);
    if (err) {
      std::fprintf(stderr, "committed: %s\n", rd_kafka_err2str(err));
      rc = 1;
    } else {
      std::string out = "{";
      for (int i = 0; i < l->cnt; ++i) {
        if (i) out += ", ";
        out += "\"" + std::to_string(l->elems[i].partition) + "\": ";
        out += l->elems[i].offset >= 0 ? std::to_string(l->elems[i].offset) : "null";
      }
      std::printf("%s}\n", out.c_str());
    }
    rd_kafka_topic_partition_list_destroy(l);
  }
  rd_kafka_destroy(rk);
  return rc;
}

int Offsets(const std::string& bootstrap, const std::string& topic) {
  rd_kafka_t* rk = NewClient(RD_KAFKA_CONSUMER, bootstrap, "");
  int rc = 0;
  const int n = PartitionCount(rk, topic);
  if (n < 0) rc = 1;
  std::string out = "{";
  for (int p = 0; rc == 0 && p < n; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10000);
    if (err) {
      std::fprintf(stderr, "offsets of %s/%d: %s\n", topic.c_str(), p, rd_kafka_err2str(err));
      rc = 1;
      break;
    }
    if (p) out += ", ";
    out += "\"" + std::to_string(p) + "\": [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  if (rc == 0) std::printf("%s}\n", out.c_str());
  rd_kafka_destroy(rk);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weir-kafka-tool: produce test records, show committed offsets and watermarks"};
  app.require_subcommand(1);
  std::string bootstrap, topic, group;
  int64_t count = 0, start = 0;
  double rate = 0;
  bool from_stdin = false;
  auto* produce = app.add_subcommand("produce", "produce generated records (or stdin lines)");
  produce->add_option("--bootstrap", bootstrap)->required();
  produce->add_option("--topic", topic)->required();
  produce->add_option("--count", count, "number of generated records");
  produce->add_option("--start", start, "first id (default 0)");
  produce->add_option("--rate", rate, "records per second (default: unlimited)");
  produce->add_flag("--stdin", from_stdin, "one record per stdin line instead");
  EventOptions ev;
  produce->add_flag("--events", ev.events,
                    "sample JSON events (id, event_time, app, user.id, amount) instead of {\"id\":N}");
  produce->add_option("--bad-every", ev.bad_every, "with --events: every N-th record is malformed");
  produce->add_option("--base-ms", ev.base_ms, "with --events: event time of id 0 (epoch ms)");
  produce->add_option("--step-ms", ev.step_ms, "with --events: event time step per id (ms)");
  auto* committed = app.add_subcommand("committed", "a consumer group's committed offsets");
  committed->add_option("--bootstrap", bootstrap)->required();
  committed->add_option("--group", group)->required();
  committed->add_option("--topic", topic)->required();
  auto* offsets = app.add_subcommand("offsets", "a topic's low and high watermarks");
  offsets->add_option("--bootstrap", bootstrap)->required();
  offsets->add_option("--topic", topic)->required();
  CLI11_PARSE(app, argc, argv);
  if (produce->parsed()) {
    if (!from_stdin && count <= 0) {
      std::fprintf(stderr, "produce: give --count N (> 0) or --stdin\n");
      return 2;
    }
    if (ev.bad_every < 0 || ev.step_ms < 0) {
      std::fprintf(stderr, "produce: --bad-every and --step-ms must be >= 0\n");
      return 2;
    }
    return Produce(bootstrap, topic, count, start, rate, from_stdin, ev);
  }
  if (committed->parsed()) return Committed(bootstrap, group, topic);
  return Offsets(bootstrap, topic);
}
