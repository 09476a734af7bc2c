// The TCP data plane between task managers (protocol: docs/data-plane.md).
//
// One NetworkEnvironment per task manager process. It listens on a data port and keeps at most
// one outbound TCP connection per remote task manager; every channel from a local producer to a
// remote consumer is multiplexed on it under a numeric id, announced by an OPEN frame that names
// the channel's key. Flow control is credit-based: the receiver grants `buffers_per_channel`
// credits at OPEN and one more each time its consumer takes a buffer; a sender spends one credit
// per frame and waits at zero. Channels to consumers in the same process bypass sockets
// (LocalSender). All methods are thread-safe.
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
#include "weir/status.h"

namespace weir {

struct NetworkOptions {
  size_t buffers_per_channel = 8;  // credits (remote) and queue length (local) per channel
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
  // Tests and metrics: inbound connection objects held, and released prefixes remembered.
  size_t inbound_connections() const;
  size_t released_prefixes() const;

  // The consumer's end of the channel named `key`, created on first use by either side.
  std::shared_ptr<InputChannel> GetOrCreateChannel(const std::string& key);
  // Forgets every channel whose key starts with `prefix` (a task or job attempt that ended),
  // closing them so that producers blocked on them fail.
  void ReleaseChannels(const std::string& prefix);

  // A sender to the consumer named `key` in this process.
  std::unique_ptr<ChannelSender> ConnectLocal(const std::string& key,
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
  void AcceptLoop();

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
  kData = 1,        // = EventKind values 1..5 for in-band buffers
  kBarrier = 2,
  kWatermark = 3,
  kEndOfStream = 4,
  kWatermarkStatus = 5,
  kOpen = 16,       // body: channel key; sender -> receiver
  kCredit = 17,     // arg: credits granted; receiver -> sender
};

constexpr uint32_t kMaxFrameBody = 64u << 20;  // a larger frame is a protocol error

}  // namespace weir
