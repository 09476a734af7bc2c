// weir-dev-broker: a DEVELOPMENT Kafka broker for local runs and tests, built on librdkafka's
// mock cluster (rdkafka_mock.h). It speaks the Kafka protocol to any client, but keeps all data
// in memory, retains only ~5 MiB per partition (older data is silently dropped), and ignores
// transactions. Never use it for real data.
//
// A control channel on 127.0.0.1 (line-based text, one command per line, reply "ok[ ...]" or
// "error: <reason>") lets tests inject faults the mock supports; see Usage() for the commands.
// Single-threaded: one poll() loop serves the control clients and the signal fd; the mock
// cluster runs on librdkafka's own threads (its API is thread-safe).
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "weir/logging.h"

namespace {

const weir::ModuleLog Log("devbroker");

constexpr size_t kMaxLine = 4096;

const char* kCommands =
    "create-topic NAME PARTITIONS | broker-down ID | broker-up ID | "
    "request-errors APIKEY ERRCODE COUNT | leader TOPIC PARTITION BROKER | rtt BROKER MS | "
    "bootstrap | ping | help | quit";

bool ParseInt(std::string_view s, int64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

// Writes `text` to `path` atomically (temp file + rename), so readers never see half of it.
bool WriteFileAtomic(const std::string& path, const std::string& text, std::string* err) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text << "\n";
    f.flush();
    if (!f) {
      *err = "cannot write " + tmp;
      return false;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = "rename " + tmp + " -> " + path + ": " + strerror(errno);
    return false;
  }
  return true;
}

// An error code by number (e.g. 6, -195) or by librdkafka's name ("NOT_LEADER_FOR_PARTITION",
// "_TRANSPORT"; case-sensitive, as rd_kafka_err2name prints them).
bool ParseErrCode(std::string_view s, rd_kafka_resp_err_t* out) {
  int64_t v;
  if (ParseInt(s, &v)) {
    *out = static_cast<rd_kafka_resp_err_t>(v);
    return true;
  }
  const struct rd_kafka_err_desc* descs;
  size_t n;
  rd_kafka_get_err_descs(&descs, &n);
  for (size_t i = 0; i < n; ++i) {
    if (descs[i].name && s == descs[i].name) {
      *out = descs[i].code;
      return true;
    }
  }
  return false;
}

// Kafka API keys by name, for readability of test scripts; numbers work too.
bool ParseApiKey(std::string_view s, int16_t* out) {
  static const std::map<std::string_view, int16_t> kNames = {
      {"Produce", 0},        {"Fetch", 1},           {"ListOffsets", 2},
      {"Metadata", 3},       {"OffsetCommit", 8},    {"OffsetFetch", 9},
      {"FindCoordinator", 10}, {"JoinGroup", 11},    {"Heartbeat", 12},
      {"LeaveGroup", 13},    {"SyncGroup", 14},      {"ApiVersions", 18},
      {"InitProducerId", 22}};
  int64_t v;
  if (ParseInt(s, &v)) {
    if (v < 0 || v > 100) return false;
    *out = static_cast<int16_t>(v);
    return true;
  }
  auto it = kNames.find(s);
  if (it == kNames.end()) return false;
  *out = it->second;
  return true;
}

class DevBroker {
 public:
  DevBroker(rd_kafka_mock_cluster_t* mc, int brokers) : mc_(mc), brokers_(brokers) {}

  std::string Bootstrap() const { return rd_kafka_mock_cluster_bootstraps(mc_); }

  // Creates a topic with leaders spread deterministically: partition p on broker p % N + 1.
  std::string CreateTopic(const std::string& name, int64_t partitions) {
    if (name.empty() || name.size() > 249) return "error: topic name must have 1..249 characters";
    for (char c : name) {
      if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
        return "error: topic name may only hold [a-zA-Z0-9._-]";
      }
    }
    if (partitions < 1 || partitions > 10000) return "error: PARTITIONS must be 1..10000";
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(mc_, name.c_str(), static_cast<int>(partitions), 1);
    if (err) return std::string("error: create topic: ") + rd_kafka_err2str(err);
    for (int p = 0; p < partitions; ++p) {
      err = rd_kafka_mock_partition_set_leader(mc_, name.c_str(), p, p % brokers_ + 1);
      if (err) return std::string("error: set leader: ") + rd_kafka_err2str(err);
    }
    Log()->info("created topic {} with {} partition(s)", name, partitions);
    return "ok";
  }

  // One command line -> one reply line. Never throws; `*quit` is set by "quit".
  std::string Execute(std::string_view line, bool* quit) {
    std::vector<std::string> w;
    {
      std::istringstream in{std::string(line)};
      std::string t;
      while (in >> t) w.push_back(t);
    }
    if (w.empty()) return "error: empty command; commands: " + std::string(kCommands);
    const std::string& cmd = w[0];
    auto want = [&](size_t n, const char* usage) -> std::string {
      if (w.size() != n + 1) return std::string("error: usage: ") + usage;
      return "";
    };
    auto broker_id = [&](const std::string& s, int32_t* id) {
      int64_t v;
      if (!ParseInt(s, &v) || v < 1 || v > brokers_) return false;
      *id = static_cast<int32_t>(v);
      return true;
    };
    std::string e;
    if (cmd == "ping") return "ok";
    if (cmd == "help") return std::string("ok ") + kCommands;
    if (cmd == "bootstrap") {
      if (!(e = want(0, "bootstrap")).empty()) return e;
      return "ok " + Bootstrap();
    }
    if (cmd == "quit") {
      *quit = true;
      return "ok";
    }
    if (cmd == "create-topic") {
      if (!(e = want(2, "create-topic NAME PARTITIONS")).empty()) return e;
      int64_t n;
      if (!ParseInt(w[2], &n)) return "error: PARTITIONS must be an integer, got '" + w[2] + "'";
      return CreateTopic(w[1], n);
    }
    if (cmd == "broker-down" || cmd == "broker-up") {
      if (!(e = want(1, "broker-down|broker-up ID")).empty()) return e;
      int32_t id;
      if (!broker_id(w[1], &id)) return BadBroker(w[1]);
      rd_kafka_resp_err_t err = cmd == "broker-down" ? rd_kafka_mock_broker_set_down(mc_, id)
                                                     : rd_kafka_mock_broker_set_up(mc_, id);
      if (err) return std::string("error: ") + rd_kafka_err2str(err);
      Log()->info("broker {} is {}", id, cmd == "broker-down" ? "down" : "up");
      return "ok";
    }
    if (cmd == "request-errors") {
      if (!(e = want(3, "request-errors APIKEY ERRCODE COUNT")).empty()) return e;
      int16_t api;
      rd_kafka_resp_err_t code;
      int64_t count;
      if (!ParseApiKey(w[1], &api)) return "error: unknown APIKEY '" + w[1] + "'";
      if (!ParseErrCode(w[2], &code)) return "error: unknown ERRCODE '" + w[2] + "'";
      if (!ParseInt(w[3], &count) || count < 1 || count > 100000) {
        return "error: COUNT must be 1..100000, got '" + w[3] + "'";
      }
      std::vector<rd_kafka_resp_err_t> errs(static_cast<size_t>(count), code);
      rd_kafka_mock_push_request_errors_array(mc_, api, errs.size(), errs.data());
      Log()->info("next {} request(s) of API {} fail with {}", count, api, rd_kafka_err2name(code));
      return "ok";
    }
    if (cmd == "leader") {
      if (!(e = want(3, "leader TOPIC PARTITION BROKER")).empty()) return e;
      int64_t p;
      int32_t id;
      if (!ParseInt(w[2], &p) || p < 0 || p > INT32_MAX) {
        return "error: PARTITION must be an integer >= 0, got '" + w[2] + "'";
      }
      if (!broker_id(w[3], &id)) return BadBroker(w[3]);
      rd_kafka_resp_err_t err =
          rd_kafka_mock_partition_set_leader(mc_, w[1].c_str(), static_cast<int32_t>(p), id);
      if (err) return std::string("error: ") + rd_kafka_err2str(err);
      return "ok";
    }
    if (cmd == "rtt") {
      if (!(e = want(2, "rtt BROKER MS")).empty()) return e;
      int32_t id;
      int64_t ms;
      if (!broker_id(w[1], &id)) return BadBroker(w[1]);
      if (!ParseInt(w[2], &ms) || ms < 0 || ms > 600000) {
        return "error: MS must be 0..600000, got '" + w[2] + "'";
      }
      rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(mc_, id, static_cast<int>(ms));
      if (err) return std::string("error: ") + rd_kafka_err2str(err);
      return "ok";
    }
    return "error: unknown command '" + cmd + "'; commands: " + kCommands;
  }

 private:
  std::string BadBroker(const std::string& s) const {
    return "error: BROKER must be a broker id 1.." + std::to_string(brokers_) + ", got '" + s + "'";
  }

  rd_kafka_mock_cluster_t* mc_;
  int brokers_;
};

struct Client {
  int fd;
  std::string in;
  bool discarding = false;  // inside an over-long line: drop bytes up to its newline
};

int Serve(DevBroker& broker, int listen_fd, int sig_fd) {
  std::vector<Client> clients;
  bool quit = false;
  while (!quit) {
    std::vector<pollfd> fds;
    fds.push_back({sig_fd, POLLIN, 0});
    fds.push_back({listen_fd, POLLIN, 0});
    for (const Client& c : clients) fds.push_back({c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      Log()->error("poll: {}", strerror(errno));
      return 1;
    }
    if (fds[0].revents) {
      signalfd_siginfo si;
      if (::read(sig_fd, &si, sizeof si) > 0) {
        Log()->info("signal {}: shutting down", si.ssi_signo);
      }
      break;
    }
    if (fds[1].revents & POLLIN) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) clients.push_back({fd, {}});
    }
    std::vector<int> closed;
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      Client& c = clients[i - 2];
      char buf[4096];
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n <= 0) {
        closed.push_back(c.fd);
        continue;
      }
      std::string reply;
      for (ssize_t k = 0; k < n; ++k) {
        if (buf[k] != '\n') {
          if (!c.discarding) c.in.push_back(buf[k]);
          if (c.in.size() > kMaxLine) {
            c.in.clear();
            c.discarding = true;
          }
          continue;
        }
        if (c.discarding) {
          c.discarding = false;
          reply += "error: line longer than " + std::to_string(kMaxLine) + " bytes\n";
          continue;
        }
        if (!c.in.empty() && c.in.back() == '\r') c.in.pop_back();
        bool q = false;
        reply += broker.Execute(c.in, &q) + "\n";
        c.in.clear();
        if (q) {
          quit = true;
          break;
        }
      }
      // Replies are short; a client that does not read them is dropped rather than waited for.
      if (!reply.empty() && ::send(c.fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT) !=
                                static_cast<ssize_t>(reply.size())) {
        closed.push_back(c.fd);
      }
      if (quit) break;
    }
    for (int fd : closed) {
      ::close(fd);
      std::erase_if(clients, [fd](const Client& c) { return c.fd == fd; });
    }
  }
  if (quit) Log()->info("quit command: shutting down");
  for (const Client& c : clients) ::close(c.fd);
  return 0;
}

// Creates the initial topics, opens the control channel, publishes the files, serves.
int Run(DevBroker& broker, const std::vector<std::pair<std::string, int64_t>>& initial,
        int control_port, const std::string& bootstrap_file, const std::string& control_file,
        int sig_fd) {
  for (const auto& [name, n] : initial) {
    std::string r = broker.CreateTopic(name, n);
    if (r != "ok") {
      std::fprintf(stderr, "--topic %s:%lld: %s\n", name.c_str(), static_cast<long long>(n),
                   r.c_str());
      return 2;
    }
  }
  const int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (listen_fd >= 0) setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(control_port));
  socklen_t len = sizeof addr;
  if (listen_fd < 0 || ::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd, 16) != 0 ||
      ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "control channel on 127.0.0.1:%d: %s\n", control_port, strerror(errno));
    if (listen_fd >= 0) ::close(listen_fd);
    return 1;
  }
  const int port = ntohs(addr.sin_port);
  const std::string bootstrap = broker.Bootstrap();
  std::string err;
  // The control file first: whoever waits for the bootstrap file may then use both.
  if ((!control_file.empty() && !WriteFileAtomic(control_file, std::to_string(port), &err)) ||
      (!bootstrap_file.empty() && !WriteFileAtomic(bootstrap_file, bootstrap, &err))) {
    std::fprintf(stderr, "%s\n", err.c_str());
    ::close(listen_fd);
    return 1;
  }
  Log()->warn(
      "this is a DEVELOPMENT Kafka broker (librdkafka mock cluster): data lives in memory only, "
      "each partition keeps only ~5 MiB (older records are silently dropped), transactions are "
      "ignored. Never use it for real data.");
  Log()->info("bootstrap {} · control 127.0.0.1:{}", bootstrap, port);
  const int rc = Serve(broker, listen_fd, sig_fd);
  ::close(listen_fd);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "weir-dev-broker: a DEVELOPMENT Kafka broker (librdkafka's mock cluster: in memory, "
      "~5 MiB retention per partition, no transactions). Not for real data."};
  int brokers = 1;
  std::vector<std::string> topics;
  std::string bootstrap_file, control_file;
  int control_port = 0;
  app.add_option("--brokers", brokers, "number of brokers (default 1)")->check(CLI::Range(1, 16));
  app.add_option("--topic", topics, "NAME:PARTITIONS, a topic to create (repeatable)");
  app.add_option("--bootstrap-file", bootstrap_file,
                 "write the bootstrap list (host:port,...) here once ready (atomically)");
  app.add_option("--control-file", control_file, "write the control channel's port here");
  app.add_option("--control-port", control_port, "control channel port on 127.0.0.1 (default 0: ephemeral)")
      ->check(CLI::Range(0, 65535));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");

  std::vector<std::pair<std::string, int64_t>> initial;
  for (const std::string& t : topics) {
    const size_t colon = t.rfind(':');
    int64_t n = 0;
    if (colon == std::string::npos || colon == 0 || !ParseInt(std::string_view(t).substr(colon + 1), &n)) {
      std::fprintf(stderr, "--topic: expected NAME:PARTITIONS, got '%s'\n", t.c_str());
      return 2;
    }
    initial.emplace_back(t.substr(0, colon), n);
  }

  // Signals are read from a signalfd in the serve loop, so shutdown runs on the main thread.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // before librdkafka starts its threads
  const int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sig_fd < 0) {
    std::fprintf(stderr, "signalfd: %s\n", strerror(errno));
    return 1;
  }

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    std::fprintf(stderr, "cannot create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  DevBroker broker(mc, brokers);
  const int rc = Run(broker, initial, control_port, bootstrap_file, control_file, sig_fd);
  // The mock cluster before the handle that owns it (the other order crashes).
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  ::close(sig_fd);
  Log()->info("stopped");
  return rc;
}
