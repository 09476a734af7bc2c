// Hash shuffle of ~100-byte records between two processes over the real data plane, against a
// raw TCP pump over loopback that moves the same number of bytes.
//
// Both phases fork a receiver process. Weir phase: the child is the "receiver task manager" (a
// NetworkEnvironment on 127.0.0.1, ephemeral port, running the consumer subtask `sink`); the
// parent is the "sender task manager" (its own NetworkEnvironment, running the producer subtask
// `gen`, whose hash edge leads to the remote `sink`). Both build the same ExecutionPlan from the
// same YAML and each runs only its own Task. The time runs from the start of the sender task
// until the receiver task is FINISHED.
//
// Usage: shuffle_bench [records] [--credits=N] [--buffer-bytes=N] [--tls[=DIR]]
//   records: default 10000000; credits: NetworkOptions::buffers_per_channel (default as in the
//   runtime); buffer-bytes: TaskOptions::buffer_bytes (default as in the runtime).
//   --tls: after the plaintext Weir phase, the same shuffle over mutual TLS, and the ratio of
//   the two. Certificates: DIR/ca.pem, DIR/taskmanager.{pem,key} (deploy/gen-certs.sh DIR), or
//   without DIR made by deploy/gen-certs.sh in a temporary directory removed at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/network.h"
#include "weir/operator.h"
#include "weir/serde.h"
#include "weir/task.h"

namespace {

constexpr size_t kChunk = 32 * 1024;
constexpr int kTimeoutMs = 120'000;  // a phase that takes longer is reported as failed

// The payload's id is offset to a fixed 12 digits, so every row serializes to the same size.
std::string ShuffleJob(int64_t total) {
  return R"yaml(name: shuffle-bench
vertices:
  - id: gen
    type: datagen
    config:
      total: )yaml" +
         std::to_string(total) +
         R"yaml(
      fields:
        - {name: k, expr: "id % 1000"}
        - {name: payload, expr: "concat('payload-', id + 100000000000, '-abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz012345678')"}
  - id: sink
    type: blackhole
edges:
  - {from: gen, to: sink, partition: hash, key: [k]}
)yaml";
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// The calling thread's CPU time and time spent runnable but waiting for a core, from
// /proc/thread-self/schedstat (zeros if it cannot be read).
struct ThreadTimes {
  double cpu = 0;
  double runqueue = 0;
};

ThreadTimes ThreadSchedStat() {
  ThreadTimes t;
  FILE* f = std::fopen("/proc/thread-self/schedstat", "r");
  if (!f) return t;
  unsigned long long run = 0, wait = 0;
  if (std::fscanf(f, "%llu %llu", &run, &wait) == 2) {
    t.cpu = static_cast<double>(run) / 1e9;
    t.runqueue = static_cast<double>(wait) / 1e9;
  }
  std::fclose(f);
  return t;
}

ThreadTimes operator-(const ThreadTimes& a, const ThreadTimes& b) {
  return {a.cpu - b.cpu, a.runqueue - b.runqueue};
}

bool WriteFull(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads exactly n bytes from a pipe, waiting at most timeout_ms in all.
bool ReadFull(int fd, void* p, size_t n, int timeout_ms) {
  char* c = static_cast<char*>(p);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (n > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// A forked child that is killed and reaped when this goes out of scope, whatever happened.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { Stop(); }
  void set(pid_t pid) { pid_ = pid; }
  // Waits for a normal exit (the child exits by itself after reporting); kills it if it lingers.
  void Stop() {
    if (pid_ <= 0) return;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// In a forked child: dies with the parent, so nothing outlives the benchmark.
void ChildInit() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) ::_exit(3);
}

int ListenLoopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd, 1) < 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct BenchOptions {
  int64_t records = 10'000'000;
  weir::NetworkOptions network;  // runtime defaults unless overridden
  weir::TaskOptions task;
  bool tls = false;
  std::string tls_dir;  // empty: generated
};

// The job attempt's channel secret, as a job manager would hand it out (both processes).
std::string g_channel_secret;

struct PhaseResult {
  bool ok = false;
  double seconds = 0;
  double sender_cpu = 0;
  double receiver_cpu = 0;
  int64_t received = 0;                    // bytes (raw) or records (weir) the receiver saw
  ThreadTimes sender_task, receiver_task;  // weir: the two task threads
};

// What a receiver child reports through its pipe when it is done.
struct ChildReport {
  int64_t count = 0;
  double cpu = 0;
  ThreadTimes task;
  int32_t ok = 0;
};

// ------------------------------------------------------------------ raw TCP pump

[[noreturn]] void RawReceiver(int ctl) {
  ChildInit();
  int port = 0;
  int lfd = ListenLoopback(&port);
  int32_t p = lfd < 0 ? -1 : port;
  WriteFull(ctl, &p, sizeof p);
  if (lfd < 0) ::_exit(1);
  int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ChildReport rep;
  if (fd >= 0) {
    std::vector<char> buf(kChunk);
    for (;;) {
      ssize_t r = ::read(fd, buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        rep.ok = r == 0;
        break;
      }
      rep.count += r;
    }
    ::close(fd);
  }
  rep.cpu = CpuSeconds();
  WriteFull(ctl, &rep, sizeof rep);
  ::_exit(0);
}

PhaseResult RawPump(uint64_t bytes) {
  PhaseResult res;
  int ctl[2];
  if (::pipe2(ctl, O_CLOEXEC) < 0) return res;
  Child child;
  pid_t pid = ::fork();
  if (pid < 0) return res;
  if (pid == 0) {
    ::close(ctl[0]);
    RawReceiver(ctl[1]);
  }
  child.set(pid);
  ::close(ctl[1]);
  int32_t port = -1;
  int fd = -1;
  if (ReadFull(ctl[0], &port, sizeof port, 10'000) && port > 0) fd = ConnectLoopback(port);
  if (fd < 0) {
    std::fprintf(stderr, "raw pump: cannot connect to the receiver\n");
    ::close(ctl[0]);
    return res;
  }
  std::vector<char> chunk(kChunk, 'x');
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t left = bytes;
  bool sent = true;
  while (left > 0 && sent) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
    size_t off = 0;
    while (off < n) {
      ssize_t w = ::send(fd, chunk.data() + off, n - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        sent = false;
        break;
      }
      off += static_cast<size_t>(w);
    }
    left -= n;
  }
  ::shutdown(fd, SHUT_WR);
  ChildReport rep;
  const bool got = ReadFull(ctl[0], &rep, sizeof rep, kTimeoutMs);
  const auto t1 = std::chrono::steady_clock::now();
  res.sender_cpu = CpuSeconds() - cpu0;
  ::close(fd);
  ::close(ctl[0]);
  res.ok = sent && got && rep.ok && static_cast<uint64_t>(rep.count) == bytes;
  res.seconds = Seconds(t1 - t0);
  res.receiver_cpu = rep.cpu;
  res.received = rep.count;
  return res;
}

// ------------------------------------------------------------------ weir shuffle

std::shared_ptr<const weir::ExecutionPlan> MakePlan(int64_t records) {
  auto spec = weir::ParseJobFile(ShuffleJob(records));
  if (!spec.ok()) {
    std::fprintf(stderr, "job: %s\n", spec.status().ToString().c_str());
    return nullptr;
  }
  auto plan = weir::BuildPlan(std::move(spec).value(), weir::BuiltinOperators());
  if (!plan.ok()) {
    std::fprintf(stderr, "plan: %s\n", plan.status().ToString().c_str());
    return nullptr;
  }
  return std::make_shared<const weir::ExecutionPlan>(std::move(plan).value());
}

weir::TaskSetup SetupFor(const std::shared_ptr<const weir::ExecutionPlan>& plan,
                         const weir::TaskOptions& options, const std::string& task,
                         weir::NetworkEnvironment* network,
                         std::function<weir::PeerLocation(const std::string&, int)> locate) {
  weir::TaskSetup s;
  s.job_id = "shuffle-bench";
  s.attempt = 0;
  s.plan = plan;
  s.task_index = plan->task_index.at(task);
  s.subtask = 0;
  s.network = network;
  s.channel_secret = g_channel_secret;
  s.registry = &weir::BuiltinOperators();
  s.locate = std::move(locate);
  s.options = options;
  return s;
}

// The serialized size of the rows `gen` produces (from the real datagen and SerializeRow).
// Returns -1 unless every sampled row has the same size.
int64_t RowBytes(const weir::ExecutionPlan& plan) {
  const int gen = plan.vertex_index.at("gen");
  const weir::VertexSpec& v = plan.spec.vertices[gen];
  auto src = weir::BuiltinOperators().Find(v.type)->CreateSource(v.config);
  if (!src.ok()) return -1;
  weir::OperatorContext ctx;
  ctx.vertex_id = v.id;
  if (!src.value()->Open(ctx).ok()) return -1;
  weir::RowBatch batch;
  if (!src.value()->Poll(batch, 1024).ok()) return -1;
  int64_t size = -1;
  for (size_t i = 0; i < batch.size(); ++i) {
    weir::ByteBuffer buf;
    weir::SerializeRow(batch[i], plan.output_schemas[gen], buf);
    const int64_t n = static_cast<int64_t>(buf.size());
    if (size >= 0 && n != size) return -1;
    size = n;
  }
  return size;
}

[[noreturn]] void WeirReceiver(int ctl, const BenchOptions& opt) {
  ChildInit();
  spdlog::set_level(spdlog::level::warn);
  weir::NetworkEnvironment network(opt.network);
  weir::Status st = network.Start("127.0.0.1", 0);
  int32_t p = st.ok() ? network.port() : -1;
  WriteFull(ctl, &p, sizeof p);
  if (!st.ok()) ::_exit(1);
  ChildReport rep;
  auto plan = MakePlan(opt.records);
  if (plan) {
    weir::Task task(SetupFor(plan, opt.task, "sink", &network, [](const std::string&, int) {
      weir::PeerLocation loc;
      loc.local = true;  // the consumer has no outputs: never asked
      return loc;
    }));
    const ThreadTimes before = ThreadSchedStat();
    task.Run();
    rep.task = ThreadSchedStat() - before;
    rep.ok = task.state() == weir::TaskState::kFinished;
    rep.count = task.metrics().records_in.load();
  }
  rep.cpu = CpuSeconds();
  WriteFull(ctl, &rep, sizeof rep);
  network.Stop();
  ::_exit(0);
}

PhaseResult WeirShuffle(const std::shared_ptr<const weir::ExecutionPlan>& plan,
                        const BenchOptions& opt) {
  PhaseResult res;
  int ctl[2];
  if (::pipe2(ctl, O_CLOEXEC) < 0) return res;
  Child child;
  // Fork before this process starts any thread.
  pid_t pid = ::fork();
  if (pid < 0) return res;
  if (pid == 0) {
    ::close(ctl[0]);
    WeirReceiver(ctl[1], opt);
  }
  child.set(pid);
  ::close(ctl[1]);
  int32_t port = -1;
  if (!ReadFull(ctl[0], &port, sizeof port, 10'000) || port <= 0) {
    std::fprintf(stderr, "weir shuffle: the receiver did not start its data plane\n");
    ::close(ctl[0]);
    return res;
  }
  weir::NetworkEnvironment network(opt.network);
  if (weir::Status st = network.Start("127.0.0.1", 0); !st.ok()) {
    std::fprintf(stderr, "weir shuffle: %s\n", st.ToString().c_str());
    ::close(ctl[0]);
    return res;
  }
  const std::string remote = "127.0.0.1:" + std::to_string(port);
  weir::Task task(SetupFor(plan, opt.task, "gen", &network, [remote](const std::string&, int) {
    weir::PeerLocation loc;
    loc.local = false;
    loc.data_address = remote;
    return loc;
  }));
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  ThreadTimes sender_times;
  std::thread sender([&task, &sender_times] {
    const ThreadTimes before = ThreadSchedStat();
    task.Run();
    sender_times = ThreadSchedStat() - before;
  });
  ChildReport rep;
  const bool got = ReadFull(ctl[0], &rep, sizeof rep, kTimeoutMs);
  const auto t1 = std::chrono::steady_clock::now();
  if (!got) task.Cancel();
  sender.join();
  res.sender_cpu = CpuSeconds() - cpu0;
  network.Stop();
  ::close(ctl[0]);
  res.ok = got && rep.ok && rep.count == opt.records && task.state() == weir::TaskState::kFinished;
  res.seconds = Seconds(t1 - t0);
  res.receiver_cpu = rep.cpu;
  res.received = rep.count;
  res.sender_task = sender_times;
  res.receiver_task = rep.task;
  return res;
}

bool ParseArgs(int argc, char** argv, BenchOptions* opt) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto number = [&](size_t skip, int64_t* out) {
      char* end = nullptr;
      *out = std::strtoll(arg.c_str() + skip, &end, 10);
      return *end == '\0' && *out > 0;
    };
    int64_t v = 0;
    if (arg.rfind("--credits=", 0) == 0) {
      if (!number(10, &v)) return false;
      opt->network.buffers_per_channel = static_cast<size_t>(v);
    } else if (arg.rfind("--buffer-bytes=", 0) == 0) {
      if (!number(15, &v) || v < 1024) return false;
      opt->task.buffer_bytes = static_cast<size_t>(v);
    } else if (arg == "--tls") {
      opt->tls = true;
    } else if (arg.rfind("--tls=", 0) == 0) {
      opt->tls = true;
      opt->tls_dir = arg.substr(6);
    } else if (i == 1 && number(0, &v)) {
      opt->records = v;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions opt;
  if (!ParseArgs(argc, argv, &opt)) {
    std::fprintf(stderr, "usage: %s [records] [--credits=N] [--buffer-bytes=N] [--tls[=DIR]]\n",
                 argv[0]);
    return 2;
  }
  const int64_t records = opt.records;
  spdlog::set_level(spdlog::level::warn);
  auto plan = MakePlan(records);
  if (!plan) return 1;
  const int64_t row_bytes = RowBytes(*plan);
  if (row_bytes <= 0) {
    std::fprintf(stderr, "rows of `gen` do not serialize to one fixed size\n");
    return 1;
  }
  const uint64_t bytes = static_cast<uint64_t>(records) * static_cast<uint64_t>(row_bytes);
  std::printf("records: %" PRId64 ", serialized row: %" PRId64 " B, data: %.1f MB, cores: %u\n",
              records, row_bytes, static_cast<double>(bytes) / 1e6,
              std::thread::hardware_concurrency());
  std::printf("credits per channel: %zu, buffer: %zu B, buffer timeout: %" PRId64 " ms\n",
              opt.network.buffers_per_channel, opt.task.buffer_bytes, opt.task.buffer_timeout_ms);

  // The raw pump runs first: this process has no thread of its own until the Weir phase.
  {
    std::random_device rd;
    for (int i = 0; i < 32; ++i) g_channel_secret.push_back(static_cast<char>(rd() & 0xff));
  }
  std::string gen_dir;  // certificates made here, removed at the end
  if (opt.tls && opt.tls_dir.empty()) {
    char tmpl[] = "/tmp/weir-shuffle-certs-XXXXXX";
    if (!::mkdtemp(tmpl)) return 1;
    gen_dir = opt.tls_dir = tmpl;
    const std::string cmd =
        std::string("bash ") + WEIR_GEN_CERTS + " " + gen_dir + " taskmanager 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "cannot make certificates with %s\n", WEIR_GEN_CERTS);
      return 1;
    }
  }
  const PhaseResult raw = RawPump(bytes);
  const PhaseResult weir = WeirShuffle(plan, opt);
  PhaseResult tls;
  if (opt.tls) {
    BenchOptions topt = opt;
    topt.network.tls = {opt.tls_dir + "/taskmanager.pem", opt.tls_dir + "/taskmanager.key",
                        opt.tls_dir + "/ca.pem"};
    tls = WeirShuffle(plan, topt);
    if (!gen_dir.empty()) std::filesystem::remove_all(gen_dir);
  }

  const double raw_bps = raw.ok ? static_cast<double>(bytes) / raw.seconds : 0;
  const double weir_bps = weir.ok ? static_cast<double>(bytes) / weir.seconds : 0;
  std::printf("\n%-22s %8s %10s %10s %8s %12s %12s\n", "", "time s", "M rec/s", "MB/s", "vs raw",
              "send cpu s", "recv cpu s");
  auto row = [&](const char* name, const PhaseResult& r, double bps, bool recs) {
    if (!r.ok) {
      std::printf("%-22s FAILED (receiver saw %" PRId64 ")\n", name, r.received);
      return;
    }
    char rate[32] = "-";
    if (recs)
      std::snprintf(rate, sizeof rate, "%.2f", static_cast<double>(records) / r.seconds / 1e6);
    std::printf("%-22s %8.2f %10s %10.1f %8.3f %12.2f %12.2f\n", name, r.seconds, rate, bps / 1e6,
                raw_bps > 0 ? bps / raw_bps : 0.0, r.sender_cpu, r.receiver_cpu);
  };
  row("raw TCP pump (32 KiB)", raw, raw_bps, false);
  row("weir hash shuffle", weir, weir_bps, true);
  const double tls_bps = tls.ok ? static_cast<double>(bytes) / tls.seconds : 0;
  if (opt.tls) row("weir shuffle, TLS", tls, tls_bps, true);
  if (weir.ok) {
    std::printf(
        "\nweir task threads: sender cpu %.2f s, waited for a core %.2f s; "
        "receiver cpu %.2f s, waited for a core %.2f s\n",
        weir.sender_task.cpu, weir.sender_task.runqueue, weir.receiver_task.cpu,
        weir.receiver_task.runqueue);
  }
  std::printf("\nMB = 10^6 bytes of serialized rows (frame headers not counted).\n");
  if (weir.ok && raw.ok) {
    const double mrec = static_cast<double>(records) / weir.seconds / 1e6;
    std::printf("targets: >= 3 M rec/s: %s (%.2f); >= 25%% of raw: %s (%.1f%%)\n",
                mrec >= 3 ? "met" : "MISSED", mrec, weir_bps >= 0.25 * raw_bps ? "met" : "MISSED",
                100 * weir_bps / raw_bps);
  }
  if (opt.tls && tls.ok && weir.ok) {
    std::printf("TLS vs plaintext (same run): %.3f (target >= 0.70: %s)\n", tls_bps / weir_bps,
                tls_bps >= 0.7 * weir_bps ? "met" : "MISSED");
  }
  return raw.ok && weir.ok && (!opt.tls || tls.ok) ? 0 : 1;
}
