// The TCP data plane between task managers (protocol: docs/data-plane.md).
//
// One NetworkEnvironment per task manager process. It listens on a data port and keeps at most
// one outbound TCP connection per remote task manager; every channel from a local producer to a
// remote consumer is multiplexed on it under a numeric id, announced by an OPEN frame that names
// the channel's key and proves knowledge of the job attempt's channel secret (HMAC-SHA256 of the
// key under the secret the job manager handed out with the deployments). Flow control is
// credit-based: the receiver grants `buffers_per_channel` credits at OPEN and one more each time
// its consumer takes a buffer; a sender spends one credit per frame and waits at zero, and a
// sender that exceeds its credits is cut off. Channels to consumers in the same process bypass
// sockets (LocalSender). With `NetworkOptions::tls` set every connection is mutual TLS (OpenSSL):
// both ends present their certificate and verify the peer's against the CA.
//
// Threads: the environment owns them all (an accept thread that also expires handshakes and
// waiting OPENs, one reader per inbound and one per outbound connection) and joins them in Stop().
// All public methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "weir/channel.h"
#include "weir/security.h"
#include "weir/status.h"

namespace weir {

struct NetworkOptions {
  size_t buffers_per_channel = 8;  // credits (remote) and queue length (local) per channel
  // Mutual TLS on every data connection (cert, key, CA bundle); empty: plaintext.
  TlsFiles tls;
  // Largest frame body accepted (and sent). A buffer is flushed at `buffer_size`, so a frame is
  // at most buffer_size plus one row; the default leaves 64 MiB for that.
  size_t max_frame_bytes = 64u << 20;
  // Inbound connections held at once, in total and per peer IP address; more are closed at
  // accept.
  size_t max_connections = 1024;
  size_t max_connections_per_peer = 64;
  // Channels one inbound connection may open (each holds at most buffers_per_channel frames).
  size_t max_channels_per_connection = 4096;
  // An inbound connection must finish its TLS handshake and send a valid OPEN within this
  // time, or it is closed. Once a channel was opened on it, it is never timed out (channels
  // may idle for long between barriers).
  int64_t handshake_timeout_ms = 10000;
  // An OPEN for a job attempt this task manager has no secret for yet (its deployment has not
  // arrived) waits this long, then is refused. At most `max_pending_opens` wait at once.
  int64_t open_timeout_ms = 60000;
  size_t max_pending_opens = 4096;
};

class OutConnection;
class InConnection;

class NetworkEnvironment {
 public:
  explicit NetworkEnvironment(NetworkOptions options = {});
  ~NetworkEnvironment();
  NetworkEnvironment(const NetworkEnvironment&) = delete;
  NetworkEnvironment& operator=(const NetworkEnvironment&) = delete;

  // Listens on host:port (port 0: ephemeral) and starts accepting.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  // Closes the listener and every connection, joins every thread of the data plane, and
  // fails channels fed by them.
  void Stop();
  // Serves one inbound connection, already accepted as `fd` (owned from now on), on the calling
  // thread until it ends: the same handshake, checks and admission as a connection from the
  // listener, without a thread of its own and outside the caps on connections. For fuzzing
  // and tests, which feed it a socketpair.
  void ServeInbound(int fd, const std::string& peer);
  // Tests and metrics: inbound connection objects held, and released prefixes remembered.
  size_t inbound_connections() const;
  size_t released_prefixes() const;

  // The consumer's end of the channel named `key`, created on first use by either side.
  std::shared_ptr<InputChannel> GetOrCreateChannel(const std::string& key);
  // Forgets every channel whose key starts with `prefix` (a task or job attempt that ended),
  // closing them so that producers blocked on them fail.
  void ReleaseChannels(const std::string& prefix);

  // The channel secret of job attempt `attempt_prefix` (ChannelKeyPrefix: "<job>/<attempt>/"):
  // OPENs of keys under it must carry HMAC-SHA256(secret, key), and this process's senders
  // sign theirs with it. OPENs that arrived before it wait for it (open_timeout_ms). Released
  // with the attempt (ReleaseChannels of the prefix or a coarser one); at most kMaxReleased
  // are kept. The secret is never logged.
  void SetAttemptSecret(const std::string& attempt_prefix, const std::string& secret);
  // Tests and metrics: OPENs refused (forged, duplicate, expired) and connections refused at
  // accept (over a cap) or cut (handshake failed or timed out, protocol error).
  size_t refused_opens() const { return refused_opens_.load(); }
  size_t refused_connections() const { return refused_connections_.load(); }

  // A sender to the consumer named `key` in this process. Fails if a producer already
  // opened that key.
  Result<std::unique_ptr<ChannelSender>> ConnectLocal(const std::string& key,
                                                      const std::atomic<bool>* cancel);
  // A sender to the consumer named `key` at the task manager whose data address is `address`
  // ("host:port"). Reuses the connection to that address if it is alive. `peer_name` (e.g.
  // the task manager's id) goes into error messages.
  Result<std::unique_ptr<ChannelSender>> ConnectRemote(const std::string& address,
                                                       const std::string& key,
                                                       const std::atomic<bool>* cancel,
                                                       const std::string& peer_name = "");
  const NetworkOptions& options() const { return options_; }

 private:
  struct PendingOpen;
  struct Admission;
  void AcceptLoop();
  void Sweep();
  // The TLS context, created at first use from options_.tls (null when TLS is off).
  Result<void*> TlsContext();
  // Decides an OPEN (connection reader thread); see docs/data-plane.md.
  Admission AdmitOpen(const std::shared_ptr<InConnection>& conn, uint32_t id,
                      const std::string& key, const uint8_t* mac);
  Admission DecideLocked(const std::string& key, const std::string& secret, const uint8_t* mac);
  std::shared_ptr<InputChannel> GetOrCreateChannelLocked(const std::string& key);

  NetworkOptions options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<InputChannel>> channels_;
  // Prefixes of consumers that ended: late producers get closed channels. Releasing a job
  // attempt drops the finer prefixes under it, and the oldest prefixes go beyond
  // kMaxReleased (a producer that late is long cancelled by its job manager).
  std::set<std::string> released_;
  std::deque<std::string> released_order_;
  static constexpr size_t kMaxReleased = 4096;
  std::map<std::string, std::shared_ptr<OutConnection>> out_;
  // Inbound connections; their readers are joined when they end (reaped at the next accept)
  // and at Stop().
  std::vector<std::shared_ptr<InConnection>> in_;
  // Channel secrets per job attempt prefix (insertion order kept to bound them).
  std::map<std::string, std::string> secrets_;
  std::deque<std::string> secrets_order_;
  // Keys a producer opened (remotely or locally): a second OPEN of one is refused.
  std::set<std::string> opened_;
  std::deque<std::unique_ptr<PendingOpen>> pending_;  // OPENs waiting for their secret

  std::mutex tls_mu_;
  void* tls_ctx_ = nullptr;  // SSL_CTX*
  Status tls_error_;
  std::atomic<size_t> refused_opens_{0};
  std::atomic<size_t> refused_connections_{0};

  friend class InConnection;
};

// Frame header on the wire (little-endian), followed by `length` body bytes.
struct FrameHeader {
  uint32_t length;   // body bytes
  uint32_t channel;  // channel id on this connection
  uint8_t kind;      // FrameKind
  uint8_t pad[3];
  uint32_t records;
  int64_t arg;
};
static_assert(sizeof(FrameHeader) == 24);

enum class FrameKind : uint8_t {
  kData = 1,  // = EventKind values 1..5 for in-band buffers
  kBarrier = 2,
  kWatermark = 3,
  kEndOfStream = 4,
  kWatermarkStatus = 5,
  kOpen = 16,    // body: channel key; sender -> receiver
  kCredit = 17,  // arg: credits granted; receiver -> sender
  kRefuse = 18,  // the OPEN of this channel id was refused; receiver -> sender
};

constexpr size_t kOpenMacBytes = 32;     // HMAC-SHA256 at the end of an OPEN body
constexpr size_t kMaxChannelKey = 1024;  // longer keys are a protocol error
constexpr int64_t kMaxCredits = 65536;   // a sender holding more is a protocol error

// HMAC-SHA256(secret, key): the proof an OPEN carries.
std::string OpenProof(const std::string& secret, const std::string& key);
// "<job>/<attempt>/" of a channel key; empty if the key has no such prefix.
std::string AttemptPrefixOf(const std::string& key);

}  // namespace weir
