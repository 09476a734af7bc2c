#include "weir/network.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>

#include "weir/logging.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

const ModuleLog Log("network");

bool WriteAll(int fd, const struct iovec* iov_in, int iovcnt) {
  struct iovec iov[4];
  std::memcpy(iov, iov_in, sizeof(struct iovec) * iovcnt);
  int i = 0;
  while (i < iovcnt) {
    struct msghdr msg {};
    msg.msg_iov = iov + i;
    msg.msg_iovlen = static_cast<size_t>(iovcnt - i);
    // MSG_NOSIGNAL: a peer that died must be an error value, never a SIGPIPE.
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t left = static_cast<size_t>(n);
    while (i < iovcnt && left >= iov[i].iov_len) {
      left -= iov[i].iov_len;
      ++i;
    }
    if (i < iovcnt) {
      iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
      iov[i].iov_len -= left;
    }
  }
  return true;
}

bool ReadAll(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::recv(fd, p, len, 0);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void TuneSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Result<std::pair<std::string, int>> SplitAddress(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("bad address '" + address + "' (expected host:port)");
  }
  int64_t port = 0;
  if (!TryParseInt64(std::string_view(address).substr(colon + 1), &port).ok() || port < 0 ||
      port > 65535) {
    return Status::InvalidArgument("bad port in address '" + address + "'");
  }
  return std::make_pair(address.substr(0, colon), static_cast<int>(port));
}

}  // namespace

// ------------------------------------------------------------------ outbound connection

// Credit state of one remote channel, shared by its sender and the connection's reader thread.
struct RemoteChannelState {
  std::mutex mu;
  std::condition_variable cv;
  int64_t credits = 0;
  bool failed = false;
};

class OutConnection {
 public:
  OutConnection(int fd, std::string address) : fd_(fd), address_(std::move(address)) {}
  // The last owner (the environment, or a sender) ends the reader: shutting the socket down
  // makes its read fail at once. The reader itself never owns the connection, so this never
  // runs on the reader thread.
  ~OutConnection() {
    Shutdown();
    if (reader_.joinable()) reader_.join();
    ::close(fd_);
  }
  void StartReader() {
    reader_ = std::thread([this] { ReadLoop(); });
  }
  bool alive() const { return !broken_.load(); }
  const std::string& address() const { return address_; }

  Result<std::pair<uint32_t, std::shared_ptr<RemoteChannelState>>> Open(const std::string& key) {
    auto state = std::make_shared<RemoteChannelState>();
    uint32_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = next_id_++;
      channels_[id] = state;
    }
    FrameHeader h{};
    h.length = static_cast<uint32_t>(key.size());
    h.channel = id;
    h.kind = static_cast<uint8_t>(FrameKind::kOpen);
    if (!WriteFrame(h, key.data())) {
      return Status::Unavailable("data connection to " + address_ + " failed");
    }
    return std::make_pair(id, state);
  }

  bool WriteFrame(const FrameHeader& h, const void* body) {
    struct iovec iov[2] = {{const_cast<FrameHeader*>(&h), sizeof h},
                           {const_cast<void*>(body), h.length}};
    std::lock_guard<std::mutex> lock(write_mu_);
    if (broken_) return false;
    if (!WriteAll(fd_, iov, h.length ? 2 : 1)) {
      MarkBroken();
      return false;
    }
    return true;
  }

  void Shutdown() { ::shutdown(fd_, SHUT_RDWR); }

 private:
  void ReadLoop() {
    FrameHeader h;
    while (ReadAll(fd_, &h, sizeof h)) {
      if (h.kind != static_cast<uint8_t>(FrameKind::kCredit) || h.length != 0) {
        Log()->error("protocol error from {}: unexpected frame kind {} on an outbound connection",
                     address_, h.kind);
        break;
      }
      std::shared_ptr<RemoteChannelState> st;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = channels_.find(h.channel);
        if (it != channels_.end()) st = it->second;
      }
      if (!st) continue;
      {
        std::lock_guard<std::mutex> lock(st->mu);
        st->credits += h.arg;
      }
      st->cv.notify_all();
    }
    MarkBroken();
  }

  void MarkBroken() {
    broken_ = true;
    std::map<uint32_t, std::shared_ptr<RemoteChannelState>> chans;
    {
      std::lock_guard<std::mutex> lock(mu_);
      chans = channels_;
    }
    for (auto& [id, st] : chans) {
      {
        std::lock_guard<std::mutex> lock(st->mu);
        st->failed = true;
      }
      st->cv.notify_all();
    }
    ::shutdown(fd_, SHUT_RDWR);
  }

  int fd_;
  std::string address_;
  std::thread reader_;
  std::atomic<bool> broken_{false};
  std::mutex write_mu_;
  std::mutex mu_;
  uint32_t next_id_ = 1;
  std::map<uint32_t, std::shared_ptr<RemoteChannelState>> channels_;
};

class RemoteSender : public ChannelSender {
 public:
  RemoteSender(std::shared_ptr<OutConnection> conn, uint32_t id,
               std::shared_ptr<RemoteChannelState> st, const std::atomic<bool>* cancel,
               std::string peer)
      : conn_(std::move(conn)), id_(id), st_(std::move(st)), cancel_(cancel),
        peer_(std::move(peer)) {}

  Status Send(NetBuffer&& b) override {
    {
      std::unique_lock<std::mutex> lock(st_->mu);
      if (st_->credits == 0 && !st_->failed) {
        // No credit: the consumer has no room (back-pressure), timed for the metrics.
        const auto from = std::chrono::steady_clock::now();
        while (st_->credits == 0 && !st_->failed) {
          if (cancel_ && cancel_->load(std::memory_order_relaxed)) {
            return Status::Cancelled("send cancelled");
          }
          st_->cv.wait_for(lock, std::chrono::milliseconds(50));
        }
        blocked_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now() - from)
                           .count();
      }
      if (st_->failed) return Status::Unavailable("data connection to " + peer_ + " lost");
      --st_->credits;
    }
    FrameHeader h{};
    h.length = static_cast<uint32_t>(b.bytes.size());
    h.channel = id_;
    h.kind = static_cast<uint8_t>(b.kind);
    h.records = b.records;
    h.arg = b.arg;
    if (!conn_->WriteFrame(h, b.bytes.data())) {
      return Status::Unavailable("data connection to " + peer_ + " lost");
    }
    return Status::Ok();
  }

 private:
  std::string peer_;
  std::shared_ptr<OutConnection> conn_;
  uint32_t id_;
  std::shared_ptr<RemoteChannelState> st_;
  const std::atomic<bool>* cancel_;
};

// ------------------------------------------------------------------ inbound connection

class InConnection : public std::enable_shared_from_this<InConnection> {
 public:
  InConnection(int fd, std::string peer, NetworkEnvironment* env)
      : fd_(fd), peer_(std::move(peer)), env_(env) {}
  // Owned by the environment, which joins the reader before dropping it (Reap, Stop); a
  // consumer's credit callback may hold the last reference only after the reader ended.
  ~InConnection() {
    Shutdown();
    Join();
    ::close(fd_);
  }

  // The reader captures `this`: the environment keeps the connection until it is joined.
  void Start() { thread_ = std::thread([this] { ReadLoop(); done_.store(true); }); }
  void Shutdown() { ::shutdown(fd_, SHUT_RDWR); }
  bool done() const { return done_.load(); }
  void Join() {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  void SendCredit(uint32_t id, int64_t n) {
    FrameHeader h{};
    h.channel = id;
    h.kind = static_cast<uint8_t>(FrameKind::kCredit);
    h.arg = n;
    struct iovec iov[1] = {{&h, sizeof h}};
    std::lock_guard<std::mutex> lock(write_mu_);
    WriteAll(fd_, iov, 1);  // a failure shows up in the read loop
  }

  void ReadLoop() {
    FrameHeader h;
    std::string why = "connection from " + peer_ + " closed";
    while (ReadAll(fd_, &h, sizeof h)) {
      if (h.length > kMaxFrameBody) {
        why = "protocol error from " + peer_ + ": frame of " + std::to_string(h.length) + " bytes";
        break;
      }
      NetBuffer b;
      b.bytes.resize(h.length);
      if (h.length && !ReadAll(fd_, b.bytes.data(), h.length)) break;
      const auto kind = static_cast<FrameKind>(h.kind);
      if (kind == FrameKind::kOpen) {
        std::string key(b.bytes.begin(), b.bytes.end());
        auto ch = env_->GetOrCreateChannel(key);
        std::weak_ptr<InConnection> weak = shared_from_this();
        const uint32_t id = h.channel;
        ch->SetOnConsumed([weak, id] {
          if (auto self = weak.lock()) self->SendCredit(id, 1);
        });
        channels_[id] = ch;
        SendCredit(id, static_cast<int64_t>(env_->options().buffers_per_channel));
        continue;
      }
      if (kind < FrameKind::kData || kind > FrameKind::kWatermarkStatus) {
        why = "protocol error from " + peer_ + ": unknown frame kind " + std::to_string(h.kind);
        break;
      }
      auto it = channels_.find(h.channel);
      if (it == channels_.end()) {
        why = "protocol error from " + peer_ + ": data for unopened channel " +
              std::to_string(h.channel);
        break;
      }
      b.kind = static_cast<EventKind>(h.kind);
      b.records = h.records;
      b.arg = h.arg;
      if (b.kind == EventKind::kEndOfStream) finished_.push_back(h.channel);
      it->second->PushNoWait(std::move(b));
    }
    // Channels that did not see their end of stream lost their producer.
    for (auto& [id, ch] : channels_) {
      bool done = false;
      for (uint32_t f : finished_) done = done || f == id;
      if (!done) ch->Fail(Status::Unavailable(why));
      ch->SetOnConsumed(nullptr);
    }
    channels_.clear();
  }

  int fd_;
  std::string peer_;
  NetworkEnvironment* env_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::mutex write_mu_;
  std::map<uint32_t, std::shared_ptr<InputChannel>> channels_;  // reader thread only
  std::vector<uint32_t> finished_;
};

// ------------------------------------------------------------------ environment

NetworkEnvironment::NetworkEnvironment(NetworkOptions options) : options_(options) {}

NetworkEnvironment::~NetworkEnvironment() { Stop(); }

Status NetworkEnvironment::Start(const std::string& host, int port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::IoError(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument("data plane bind host '" + host + "' is not an IPv4 address");
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return Status::IoError("cannot bind data port " + host + ":" + std::to_string(port) + ": " +
                           strerror(errno));
  }
  if (::listen(listen_fd_, 128) < 0) return Status::IoError(std::string("listen: ") + strerror(errno));
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void NetworkEnvironment::AcceptLoop() {
  while (!stopping_) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;  // listener closed
    }
    TuneSocket(fd);
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof buf);
    auto conn = std::make_shared<InConnection>(
        fd, std::string(buf) + ":" + std::to_string(ntohs(peer.sin_port)), this);
    std::vector<std::shared_ptr<InConnection>> ended;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Connections whose peers went away are joined and dropped here, so the list is
      // bounded by the live peers (plus those that ended since the last accept).
      for (auto it = in_.begin(); it != in_.end();) {
        if ((*it)->done()) {
          ended.push_back(std::move(*it));
          it = in_.erase(it);
        } else {
          ++it;
        }
      }
      in_.push_back(conn);
    }
    for (auto& c : ended) c->Join();
    ended.clear();
    conn->Start();
  }
}

void NetworkEnvironment::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  std::vector<std::shared_ptr<InConnection>> in;
  std::map<std::string, std::shared_ptr<OutConnection>> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in.swap(in_);
    out.swap(out_);
  }
  // Inbound readers use this object (channels, options): every one is joined before the
  // state goes. Shutting a socket down ends its reader's blocking read at once.
  for (auto& c : in) c->Shutdown();
  for (auto& [a, c] : out) c->Shutdown();
  for (auto& c : in) c->Join();
  in.clear();
  out.clear();  // senders may still hold connections; their readers end with the socket
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, ch] : channels_) ch->Close();
  channels_.clear();
}

std::shared_ptr<InputChannel> NetworkEnvironment::GetOrCreateChannel(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = channels_.find(key);
  if (it != channels_.end()) return it->second;
  auto ch = std::make_shared<InputChannel>(options_.buffers_per_channel);
  // A producer that connects after its consumer ended gets a closed channel (and so fails
  // fast) instead of a fresh one that nobody will ever read.
  for (size_t slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
    if (released_.count(key.substr(0, slash + 1))) {
      ch->Close();
      return ch;
    }
  }
  channels_.emplace(key, ch);
  return ch;
}

size_t NetworkEnvironment::inbound_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_.size();
}

size_t NetworkEnvironment::released_prefixes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return released_.size();
}

void NetworkEnvironment::ReleaseChannels(const std::string& prefix) {
  std::vector<std::shared_ptr<InputChannel>> closed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A coarser prefix covers the finer ones under it (a job attempt covers its subtasks).
    for (auto it = released_.lower_bound(prefix);
         it != released_.end() && it->compare(0, prefix.size(), prefix) == 0;) {
      it = released_.erase(it);
    }
    if (released_.insert(prefix).second) released_order_.push_back(prefix);
    while (released_.size() > kMaxReleased && !released_order_.empty()) {
      released_.erase(released_order_.front());
      released_order_.pop_front();
    }
    // The order list also names prefixes already dropped as finer ones: compact it now and
    // then. (Popping its oldest entries instead could drop a kept prefix's only entry, and
    // that prefix would then never be evicted.)
    if (released_order_.size() > 2 * kMaxReleased) {
      std::erase_if(released_order_, [&](const std::string& p) { return !released_.count(p); });
    }
    for (auto it = channels_.lower_bound(prefix);
         it != channels_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      closed.push_back(it->second);
      it = channels_.erase(it);
    }
  }
  for (auto& ch : closed) ch->Close();
}

std::unique_ptr<ChannelSender> NetworkEnvironment::ConnectLocal(const std::string& key,
                                                                const std::atomic<bool>* cancel) {
  return std::make_unique<LocalSender>(GetOrCreateChannel(key), cancel);
}

Result<std::unique_ptr<ChannelSender>> NetworkEnvironment::ConnectRemote(
    const std::string& address, const std::string& key, const std::atomic<bool>* cancel,
    const std::string& peer_name) {
  std::shared_ptr<OutConnection> conn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = out_.find(address);
    if (it != out_.end() && it->second->alive()) conn = it->second;
  }
  if (!conn) {
    WEIR_ASSIGN_OR_RETURN(auto hp, SplitAddress(address));
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(hp.first.c_str(), std::to_string(hp.second).c_str(), &hints, &res);
    if (rc != 0 || !res) {
      return Status::Unavailable("cannot resolve data address " + address + ": " + gai_strerror(rc));
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
      std::string err = strerror(errno);
      freeaddrinfo(res);
      if (fd >= 0) ::close(fd);
      return Status::Unavailable("cannot connect to data address " + address + ": " + err);
    }
    freeaddrinfo(res);
    TuneSocket(fd);
    conn = std::make_shared<OutConnection>(fd, address);
    conn->StartReader();
    std::vector<std::shared_ptr<OutConnection>> drop;  // destroyed (readers joined) unlocked
    std::lock_guard<std::mutex> lock(mu_);
    auto it = out_.find(address);
    if (it != out_.end() && it->second->alive()) {
      drop.push_back(std::move(conn));  // another thread won the race; use its connection
      conn = it->second;
    } else {
      out_[address] = conn;
    }
    // Broken connections (to peers that died or moved) go, so the map is bounded by the
    // live peers.
    for (auto o = out_.begin(); o != out_.end();) {
      if (!o->second->alive()) {
        drop.push_back(std::move(o->second));
        o = out_.erase(o);
      } else {
        ++o;
      }
    }
  }
  WEIR_ASSIGN_OR_RETURN(auto opened, conn->Open(key));
  const std::string peer = peer_name.empty() ? address : peer_name + " (" + address + ")";
  return std::unique_ptr<ChannelSender>(
      std::make_unique<RemoteSender>(conn, opened.first, opened.second, cancel, peer));
}

}  // namespace weir
