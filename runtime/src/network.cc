#include "weir/network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>

#include "weir/logging.h"
#include "weir/ssl_errors.h"
#include "weir/text_formats.h"
#include "weir/thread_name.h"

namespace weir {
namespace {

const ModuleLog Log("network");

using Clock = std::chrono::steady_clock;

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

// ------------------------------------------------------------------ TLS plumbing

std::string SslErrors() { return weir::SslErrors("connection closed during the handshake"); }

// Waits for `events` on fd; timeout_ms < 0: no timeout. False on timeout or error. A socket
// that was shut down reports POLLHUP at once, so this never outlives Shutdown().
bool WaitFd(int fd, short events, int timeout_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// Receives what is there (at most len), waiting up to timeout_ms (< 0: blocking). 0: the peer
// closed; -1: an error or the timeout.
ssize_t RecvSome(int fd, char* data, size_t len, int timeout_ms) {
  if (timeout_ms >= 0 && !WaitFd(fd, POLLIN, timeout_ms)) return -1;
  for (;;) {
    ssize_t n = ::recv(fd, data, len, 0);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

// One connection's socket, plaintext or TLS. Plaintext reads and writes go straight to the
// socket (blocking, no lock, no copy).
//
// With TLS, the SSL object never touches the socket: its BIO reads ciphertext from in_ and
// appends ciphertext to out_, both in memory. The socket stays blocking and is used outside
// ssl_mu_: the reader thread recvs into the free end of in_ (the BIO only reads the filled
// part, under ssl_mu_), and a writer sends what SSL_write appended to out_ after releasing
// ssl_mu_. So ssl_mu_ (an SSL object must not be used by two threads at once) covers only the
// crypto, the reader and the writers never wait for each other's socket calls, and a 32 KiB
// frame costs one send and, on the reader's side, about one recv per 128 KiB: fewer system
// calls than plaintext, and no poll.
class Link {
 public:
  explicit Link(int fd) : fd_(fd) {}
  ~Link() {
    if (ssl_) SSL_free(ssl_);
    ::close(fd_);
  }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Puts TLS on the socket and runs the handshake (as the server or the client) until
  // `deadline`, before any other thread uses the link. Errors name `peer`.
  Status StartTls(SSL_CTX* ctx, bool server, Clock::time_point deadline, const std::string& peer) {
    ssl_ = SSL_new(ctx);
    if (!ssl_) return Status::Internal("SSL_new: " + SslErrors());
    in_.resize(kInBuffer);
    BIO* bio = BIO_new(MemoryBioMethod());
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
    }
    for (;;) {
      ERR_clear_error();
      int r = SSL_do_handshake(ssl_);
      // Our flight (or the client's Finished) is in out_ either way.
      if (!SendOut()) {
        return Status::Unavailable("TLS handshake with " + peer + " failed: connection lost");
      }
      if (r == 1) return Status::Ok();
      int err = SSL_get_error(ssl_, r);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (err == SSL_ERROR_WANT_READ && left.count() > 0) {
        CompactIn();
        const ssize_t n = ReceiveCiphertext(static_cast<int>(left.count()));
        if (n > 0) continue;
        if (n < 0 && Clock::now() >= deadline) {
          return Status::DeadlineExceeded("TLS handshake with " + peer + " timed out");
        }
        return Status::Unavailable("TLS handshake with " + peer +
                                   " failed: connection closed during the handshake");
      }
      if (err == SSL_ERROR_WANT_READ) {
        return Status::DeadlineExceeded("TLS handshake with " + peer + " timed out");
      }
      std::string why = SslErrors();
      long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        why += " (peer certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
      }
      return Status::Unavailable("TLS handshake with " + peer + " failed: " + why);
    }
  }

  // The owner serializes writers (its write lock); at most 2 iovecs (header, body).
  bool Write(const struct iovec* iov, int n) {
    if (!ssl_) return WriteAll(fd_, iov, n);
    // Header and the start of the body in one TLS record, the rest of the body straight from
    // the caller's buffer: full-size records, one copy of at most 16 KiB.
    constexpr size_t kRecord = 16384;
    if (scratch_.empty()) scratch_.resize(kRecord);
    size_t used = 0;
    int i = 0;
    size_t off = 0;
    while (i < n && used < kRecord) {
      size_t take = std::min(kRecord - used, iov[i].iov_len - off);
      std::memcpy(scratch_.data() + used, static_cast<const char*>(iov[i].iov_base) + off, take);
      used += take;
      off += take;
      if (off == iov[i].iov_len) {
        ++i;
        off = 0;
      }
    }
    {
      std::lock_guard<std::mutex> lock(ssl_mu_);
      if (!Encrypt(scratch_.data(), used)) return false;
      for (; i < n; ++i, off = 0) {
        if (iov[i].iov_len > off &&
            !Encrypt(static_cast<const char*>(iov[i].iov_base) + off, iov[i].iov_len - off)) {
          return false;
        }
      }
    }
    return SendOut();
  }

  // The reader thread only.
  bool Read(void* buf, size_t len) {
    if (!ssl_) return ReadAll(fd_, buf, len);
    char* p = static_cast<char*>(buf);
    while (len > 0) {
      size_t got = 0;
      int err = 0;
      {
        std::lock_guard<std::mutex> lock(ssl_mu_);
        ERR_clear_error();
        if (SSL_read_ex(ssl_, p, len, &got) != 1) {
          err = SSL_get_error(ssl_, 0);
          if (err == SSL_ERROR_WANT_READ) CompactIn();
        }
      }
      if (got > 0) {
        p += got;
        len -= got;
        continue;
      }
      if (err != SSL_ERROR_WANT_READ || ReceiveCiphertext(-1) <= 0) return false;
    }
    return true;
  }

  void Shutdown() { ::shutdown(fd_, SHUT_RDWR); }
  int fd() const { return fd_; }

 private:
  // Large enough for a few full records (16 KiB + 256 each): CompactIn always leaves room.
  static constexpr size_t kInBuffer = 128 * 1024;

  // Under ssl_mu_. SSL_write into memory never needs to wait: all of it or an error.
  bool Encrypt(const char* p, size_t len) {
    ERR_clear_error();
    size_t written = 0;
    return SSL_write_ex(ssl_, p, len, &written) == 1 && written == len;
  }

  // Sends what SSL appended to out_. Writers only (the owner's write lock), or the handshake.
  // out_ is swapped out under ssl_mu_ (the reader's SSL_read may append an alert), and sent
  // outside it.
  bool SendOut() {
    {
      std::lock_guard<std::mutex> lock(ssl_mu_);
      if (out_.empty()) return true;
      sending_.swap(out_);
    }
    struct iovec iov {
      sending_.data(), sending_.size()
    };
    const bool ok = WriteAll(fd_, &iov, 1);
    sending_.clear();  // keeps its capacity for the next swap
    return ok;
  }

  // Receives into the free end of in_, which is the reader's alone (the BIO reads only up to
  // in_end_), then publishes it under ssl_mu_. The reader (or the handshake) only.
  ssize_t ReceiveCiphertext(int timeout_ms) {
    const ssize_t n = RecvSome(fd_, reinterpret_cast<char*>(in_.data()) + in_end_,
                               in_.size() - in_end_, timeout_ms);
    if (n > 0) {
      std::lock_guard<std::mutex> lock(ssl_mu_);
      in_end_ += static_cast<size_t>(n);
    }
    return n;
  }

  // Under ssl_mu_ (or before the link is shared): moves unread ciphertext to the front.
  void CompactIn() {
    if (in_pos_ == in_end_) {
      in_pos_ = in_end_ = 0;
    } else if (in_pos_ > 0 && in_.size() - in_end_ < kInBuffer / 2) {
      std::memmove(in_.data(), in_.data() + in_pos_, in_end_ - in_pos_);
      in_end_ -= in_pos_;
      in_pos_ = 0;
    }
  }

  static int BioRead(BIO* b, char* data, size_t len, size_t* read) {
    auto* l = static_cast<Link*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    const size_t have = l->in_end_ - l->in_pos_;
    if (have == 0) {
      BIO_set_retry_read(b);
      return 0;
    }
    const size_t n = std::min(have, len);
    std::memcpy(data, l->in_.data() + l->in_pos_, n);
    l->in_pos_ += n;
    *read = n;
    return 1;
  }

  static int BioWrite(BIO* b, const char* data, size_t len, size_t* written) {
    auto* l = static_cast<Link*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    l->out_.insert(l->out_.end(), data, data + len);
    *written = len;
    return 1;
  }

  static long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

  static int BioCreate(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static BIO_METHOD* MemoryBioMethod() {
    static BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weir link");
      BIO_meth_set_write_ex(m, BioWrite);
      BIO_meth_set_read_ex(m, BioRead);
      BIO_meth_set_ctrl(m, BioCtrl);
      BIO_meth_set_create(m, BioCreate);
      return m;
    }();
    return method;
  }

  int fd_;
  SSL* ssl_ = nullptr;
  std::mutex ssl_mu_;
  Bytes in_;                   // ciphertext received: [in_pos_, in_end_) under ssl_mu_
  size_t in_pos_ = 0;          // under ssl_mu_
  size_t in_end_ = 0;          // written by the reader (under ssl_mu_ once the link is shared)
  Bytes out_;                  // ciphertext to send, under ssl_mu_
  Bytes sending_;              // writers only
  std::vector<char> scratch_;  // writers only (serialized by the owner)
};

}  // namespace

std::string OpenProof(const std::string& secret, const std::string& key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(key.data()), key.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string AttemptPrefixOf(const std::string& key) {
  auto a = key.find('/');
  if (a == std::string::npos || a == 0) return "";
  auto b = key.find('/', a + 1);
  if (b == std::string::npos || b == a + 1) return "";
  return key.substr(0, b + 1);
}

// ------------------------------------------------------------------ outbound connection

// Credit state of one remote channel, shared by its sender and the connection's reader thread.
struct RemoteChannelState {
  std::mutex mu;
  std::condition_variable cv;
  int64_t credits = 0;
  bool failed = false;
  bool refused = false;  // the receiver refused the OPEN
};

class OutConnection {
 public:
  OutConnection(std::unique_ptr<Link> link, std::string address)
      : link_(std::move(link)), address_(std::move(address)) {}
  // The last owner (the environment, or a sender) ends the reader: shutting the socket down
  // makes its read fail at once. The reader itself never owns the connection, so this never
  // runs on the reader thread.
  ~OutConnection() {
    Shutdown();
    if (reader_.joinable()) reader_.join();
  }
  void StartReader() {
    reader_ = std::thread([this] { ReadLoop(); });
    NameThread(reader_, "net-out-reader");
  }
  bool alive() const { return !broken_.load(); }
  const std::string& address() const { return address_; }

  // OPEN body: the key, then HMAC-SHA256(secret, key).
  Result<std::pair<uint32_t, std::shared_ptr<RemoteChannelState>>> Open(const std::string& key,
                                                                        const std::string& proof) {
    auto state = std::make_shared<RemoteChannelState>();
    uint32_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = next_id_++;
      channels_[id] = state;
    }
    const std::string body = key + proof;
    FrameHeader h{};
    h.length = static_cast<uint32_t>(body.size());
    h.channel = id;
    h.kind = static_cast<uint8_t>(FrameKind::kOpen);
    if (!WriteFrame(h, body.data())) {
      return Status::Unavailable("data connection to " + address_ + " failed");
    }
    return std::make_pair(id, state);
  }

  bool WriteFrame(const FrameHeader& h, const void* body) {
    struct iovec iov[2] = {{const_cast<FrameHeader*>(&h), sizeof h},
                           {const_cast<void*>(body), h.length}};
    std::lock_guard<std::mutex> lock(write_mu_);
    if (broken_) return false;
    if (!link_->Write(iov, h.length ? 2 : 1)) {
      MarkBroken();
      return false;
    }
    return true;
  }

  void Shutdown() { link_->Shutdown(); }

 private:
  void ReadLoop() {
    FrameHeader h;
    while (link_->Read(&h, sizeof h)) {
      const auto kind = static_cast<FrameKind>(h.kind);
      if ((kind != FrameKind::kCredit && kind != FrameKind::kRefuse) || h.length != 0) {
        Log()->error("protocol error from {}: unexpected frame kind {} on an outbound connection",
                     address_, h.kind);
        break;
      }
      std::shared_ptr<RemoteChannelState> st;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = channels_.find(h.channel);
        if (it != channels_.end()) st = it->second;
        if (st && kind == FrameKind::kRefuse) channels_.erase(it);
      }
      if (!st) continue;
      if (kind == FrameKind::kRefuse) {
        Log()->warn("{} refused the data channel with id {} (see its log)", address_, h.channel);
        {
          std::lock_guard<std::mutex> lock(st->mu);
          st->failed = st->refused = true;
        }
        st->cv.notify_all();
        continue;
      }
      bool too_many = false;
      {
        std::lock_guard<std::mutex> lock(st->mu);
        too_many = h.arg < 1 || h.arg > kMaxCredits || st->credits + h.arg > kMaxCredits;
        if (!too_many) st->credits += h.arg;
      }
      if (too_many) {
        Log()->error("protocol error from {}: credit grant of {} on channel {} exceeds {}",
                     address_, h.arg, h.channel, kMaxCredits);
        break;
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
    link_->Shutdown();
  }

  std::unique_ptr<Link> link_;
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
               std::string peer, size_t max_frame)
      : peer_(std::move(peer)),
        conn_(std::move(conn)),
        id_(id),
        st_(std::move(st)),
        cancel_(cancel),
        max_frame_(max_frame) {}

  Status Send(NetBuffer&& b) override {
    if (b.bytes.size() > max_frame_) {
      return Status::ResourceExhausted("a buffer of " + std::to_string(b.bytes.size()) +
                                       " bytes to " + peer_ + " exceeds the largest frame (" +
                                       std::to_string(max_frame_) + " bytes)");
    }
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
      if (st_->refused) {
        return Status::Unavailable("data channel refused by " + peer_ +
                                   " (a duplicate OPEN, or no deployment of this job attempt "
                                   "there; see its log)");
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
    // Written: reusable, unless it is an event's small body (it would only be grown again).
    if (InputChannel::WorthReusing(b.bytes)) spare_ = std::move(b.bytes);
    return Status::Ok();
  }

 private:
  std::string peer_;
  std::shared_ptr<OutConnection> conn_;
  uint32_t id_;
  std::shared_ptr<RemoteChannelState> st_;
  const std::atomic<bool>* cancel_;
  size_t max_frame_;
};

// ------------------------------------------------------------------ inbound connection

// What the environment decided about an OPEN.
struct NetworkEnvironment::Admission {
  enum Verdict { kAttach, kPending, kRefuse, kCut } verdict = kCut;
  std::shared_ptr<InputChannel> channel;  // kAttach
  std::string reason;                     // kRefuse, kCut (logged by the environment)
};

// An OPEN waiting for its attempt's secret.
struct NetworkEnvironment::PendingOpen {
  std::weak_ptr<InConnection> conn;
  uint32_t id = 0;
  std::string key;
  std::string mac;
  std::string peer;
  Clock::time_point deadline;
};

class InConnection : public std::enable_shared_from_this<InConnection> {
 public:
  InConnection(int fd, std::string peer, NetworkEnvironment* env)
      : link_(fd), peer_(std::move(peer)), env_(env), started_(Clock::now()) {}
  // Owned by the environment, which joins the reader before dropping it (Reap, Stop); a
  // consumer's credit callback may hold the last reference only after the reader ended.
  ~InConnection() {
    Shutdown();
    Join();
  }

  // The reader captures `this`: the environment keeps the connection until it is joined.
  // `tls`: the SSL_CTX to handshake with first (null: plaintext).
  void Start(SSL_CTX* tls) {
    thread_ = std::thread([this, tls] {
      Run(tls);
      done_.store(true);
    });
    NameThread(thread_, "net-in");
  }
  // Runs the connection on the calling thread instead (NetworkEnvironment::ServeInbound).
  void RunHere(SSL_CTX* tls) {
    Run(tls);
    done_.store(true);
  }
  void Shutdown() { link_.Shutdown(); }
  bool done() const { return done_.load(); }
  // True once a valid OPEN arrived (or one waits for its attempt's secret).
  bool admitted() const { return admitted_.load(); }
  Clock::time_point started() const { return started_; }
  const std::string& peer() const { return peer_; }
  void Join() {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  // Attaches channel id to `ch` and grants the first credits. Any thread; `on_reader` when
  // called by this connection's reader.
  void Attach(uint32_t id, std::shared_ptr<InputChannel> ch, bool on_reader) {
    const auto n = static_cast<int64_t>(env_->options().buffers_per_channel);
    auto credit = std::make_shared<std::atomic<int64_t>>(n);
    std::weak_ptr<InConnection> weak = shared_from_this();
    ch->SetOnConsumed([weak, id, credit] {
      credit->fetch_add(1);  // counted before the sender can spend it
      if (auto self = weak.lock()) self->SendCredit(id, 1);
    });
    In in{std::move(ch), std::move(credit)};
    if (on_reader) {
      channels_[id] = std::move(in);
    } else {
      std::lock_guard<std::mutex> lock(attach_mu_);
      attached_.emplace_back(id, std::move(in));
      has_attached_.store(true, std::memory_order_release);
    }
    SendCredit(id, n);
  }
  // Tells the sender its OPEN of channel id was refused. Any thread.
  void Refuse(uint32_t id) { SendControl(FrameKind::kRefuse, id, 0); }

 private:
  struct In {
    std::shared_ptr<InputChannel> ch;
    std::shared_ptr<std::atomic<int64_t>> credit;  // credits granted and not yet spent
  };

  void SendCredit(uint32_t id, int64_t n) { SendControl(FrameKind::kCredit, id, n); }
  void SendControl(FrameKind kind, uint32_t id, int64_t arg) {
    FrameHeader h{};
    h.channel = id;
    h.kind = static_cast<uint8_t>(kind);
    h.arg = arg;
    struct iovec iov[1] = {{&h, sizeof h}};
    std::lock_guard<std::mutex> lock(write_mu_);
    link_.Write(iov, 1);  // a failure shows up in the read loop
  }

  void DrainAttached() {
    std::lock_guard<std::mutex> lock(attach_mu_);
    for (auto& [id, in] : attached_) channels_[id] = std::move(in);
    attached_.clear();
    has_attached_.store(false, std::memory_order_relaxed);
  }

  void Run(SSL_CTX* tls) {
    if (tls) {
      const auto deadline =
          started_ + std::chrono::milliseconds(env_->options().handshake_timeout_ms);
      Status st = link_.StartTls(tls, /*server=*/true, deadline, peer_);
      if (!st.ok()) {
        ++env_->refused_connections_;
        Log()->warn("data connection refused: {}", st.message());
        link_.Shutdown();  // the peer sees the end at once; the fd goes when reaped
        return;
      }
    }
    ReadLoop();
  }

  // Reads the body of an accepted frame. Up to 1 MiB is allocated at once; a larger body
  // grows with what actually arrived (at most doubling), so a header alone never makes
  // this allocate.
  bool ReadBody(uint32_t length, Bytes* out) {
    constexpr size_t kStep = 1 << 20;
    if (length <= kStep) {
      out->resize(length);
      return length == 0 || link_.Read(out->data(), length);
    }
    size_t got = 0;
    while (got < length) {
      size_t step = std::min<size_t>(length - got, std::max(got, kStep));
      out->resize(got + step);
      if (!link_.Read(out->data() + got, step)) return false;
      got += step;
    }
    return true;
  }

  void ReadLoop() {
    FrameHeader h;
    std::string why = "connection from " + peer_ + " closed";
    const NetworkOptions& opt = env_->options();
    bool error = false;
    while (link_.Read(&h, sizeof h)) {
      const auto kind = static_cast<FrameKind>(h.kind);
      if (kind == FrameKind::kOpen) {
        if (h.length <= kOpenMacBytes || h.length > kMaxChannelKey + kOpenMacBytes) {
          why = "protocol error from " + peer_ + ": OPEN of " + std::to_string(h.length) + " bytes";
          error = true;
          break;
        }
        if (seen_.count(h.channel) || seen_.size() >= opt.max_channels_per_connection) {
          why = "protocol error from " + peer_ + ": channel id " + std::to_string(h.channel) +
                (seen_.count(h.channel) ? " opened twice"
                                        : " over the channel cap of " +
                                              std::to_string(opt.max_channels_per_connection));
          error = true;
          break;
        }
        std::string body(h.length, '\0');
        if (!link_.Read(body.data(), body.size())) break;
        seen_.insert(h.channel);
        std::string key = body.substr(0, body.size() - kOpenMacBytes);
        auto adm = env_->AdmitOpen(shared_from_this(), h.channel, key,
                                   reinterpret_cast<const uint8_t*>(body.data()) + key.size());
        if (adm.verdict == NetworkEnvironment::Admission::kCut) {
          why = adm.reason;
          error = true;
          break;
        }
        if (adm.verdict == NetworkEnvironment::Admission::kAttach) {
          admitted_ = true;
          Attach(h.channel, std::move(adm.channel), /*on_reader=*/true);
        } else if (adm.verdict == NetworkEnvironment::Admission::kPending) {
          admitted_ = true;
        } else {
          Refuse(h.channel);
        }
        continue;
      }
      if (kind < FrameKind::kData || kind > FrameKind::kWatermarkStatus) {
        why = "protocol error from " + peer_ + ": unknown frame kind " + std::to_string(h.kind);
        error = true;
        break;
      }
      auto it = channels_.find(h.channel);
      if (it == channels_.end() && has_attached_.load(std::memory_order_acquire)) {
        DrainAttached();
        it = channels_.find(h.channel);
      }
      if (it == channels_.end()) {
        why = "protocol error from " + peer_ + ": data for unopened channel " +
              std::to_string(h.channel);
        error = true;
        break;
      }
      if (h.length > opt.max_frame_bytes) {
        why = "protocol error from " + peer_ + ": frame of " + std::to_string(h.length) +
              " bytes (at most " + std::to_string(opt.max_frame_bytes) + ")";
        error = true;
        break;
      }
      if (it->second.credit->fetch_sub(1) <= 0) {
        why = "protocol error from " + peer_ + ": channel " + std::to_string(h.channel) +
              " sent beyond its credits";
        error = true;
        break;
      }
      NetBuffer b;
      if (h.length > 0) b.bytes = std::move(spare_);  // a consumed buffer, when there is one
      if (!ReadBody(h.length, &b.bytes)) break;
      b.kind = static_cast<EventKind>(h.kind);
      b.records = h.records;
      b.arg = h.arg;
      if (b.kind == EventKind::kEndOfStream) finished_.push_back(h.channel);
      it->second.ch->PushNoWait(std::move(b), &spare_);
    }
    if (error) {
      ++env_->refused_connections_;
      Log()->error("closing the data connection: {}", why);
    }
    // Nothing reads this connection any more: the peer sees its end now, not when the
    // connection object is reaped at the next accept.
    link_.Shutdown();
    DrainAttached();
    // Channels that did not see their end of stream lost their producer.
    for (auto& [id, in] : channels_) {
      bool done = false;
      for (uint32_t f : finished_) done = done || f == id;
      if (!done) in.ch->Fail(Status::Unavailable(why));
      in.ch->SetOnConsumed(nullptr);
    }
    channels_.clear();
  }

  Link link_;
  std::string peer_;
  NetworkEnvironment* env_;
  const Clock::time_point started_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<bool> admitted_{false};
  std::mutex write_mu_;
  std::map<uint32_t, In> channels_;  // reader thread only
  std::set<uint32_t> seen_;          // channel ids OPENed; reader thread only
  std::vector<uint32_t> finished_;
  Bytes spare_;  // the next frame's body buffer, from a channel's spares; reader thread only
  // Channels attached by other threads (an OPEN whose secret arrived later), taken over by
  // the reader when it meets an id it does not know.
  std::mutex attach_mu_;
  std::vector<std::pair<uint32_t, In>> attached_;
  std::atomic<bool> has_attached_{false};
};

// ------------------------------------------------------------------ environment

NetworkEnvironment::NetworkEnvironment(NetworkOptions options) : options_(std::move(options)) {}

NetworkEnvironment::~NetworkEnvironment() {
  Stop();
  if (tls_ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(tls_ctx_));
}

Result<void*> NetworkEnvironment::TlsContext() {
  if (!options_.tls.enabled()) return static_cast<void*>(nullptr);
  std::lock_guard<std::mutex> lock(tls_mu_);
  if (tls_ctx_) return tls_ctx_;
  if (!tls_error_.ok()) return tls_error_;
  const TlsFiles& f = options_.tls;
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  auto fail = [&](const std::string& what) {
    tls_error_ = Status::InvalidArgument("data plane TLS: " + what + ": " + SslErrors());
    SSL_CTX_free(ctx);
    return tls_error_;
  };
  if (!ctx) return fail("SSL_CTX_new");
  ERR_clear_error();
  // Both ends are Weir: TLS 1.3 only (no renegotiation), no session tickets (connections are
  // long-lived), the peer's certificate required and checked against the CA both ways.
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Take what the link's buffer has (up to 64 KiB) in one BIO call instead of each record's
  // header and body apart.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
  if (SSL_CTX_use_certificate_chain_file(ctx, f.cert.c_str()) != 1) {
    return fail("cannot load certificate " + f.cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, f.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("cannot load private key " + f.key);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("key " + f.key + " does not match certificate " + f.cert);
  }
  if (f.ca.empty() || SSL_CTX_load_verify_locations(ctx, f.ca.c_str(), nullptr) != 1) {
    return fail("cannot load CA bundle '" + f.ca + "'");
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  tls_ctx_ = ctx;
  return tls_ctx_;
}

Status NetworkEnvironment::Start(const std::string& host, int port) {
  WEIR_RETURN_IF_ERROR(TlsContext().status());
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::IoError(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    // A host name: its first IPv4 address.
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return Status::InvalidArgument("data plane bind host '" + host +
                                     "' is neither an IPv4 address nor a name that resolves to "
                                     "one: " +
                                     gai_strerror(rc));
    }
    addr.sin_addr = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
    freeaddrinfo(res);
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return Status::IoError("cannot bind data port " + host + ":" + std::to_string(port) + ": " +
                           strerror(errno));
  }
  if (::listen(listen_fd_, 128) < 0)
    return Status::IoError(std::string("listen: ") + strerror(errno));
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  NameThread(accept_thread_, "net-accept");
  return Status::Ok();
}

void NetworkEnvironment::AcceptLoop() {
  SSL_CTX* tls = static_cast<SSL_CTX*>(TlsContext().value());  // checked by Start
  while (!stopping_) {
    // Wakes at least once a second to expire handshakes and waiting OPENs.
    pollfd p{listen_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 1000);
    if (stopping_) break;
    Sweep();
    if (r <= 0) continue;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) break;  // listener closed
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN || errno == EMFILE ||
          errno == ENFILE) {
        continue;
      }
      break;  // listener closed
    }
    TuneSocket(fd);
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof buf);
    const std::string ip = buf;
    std::vector<std::shared_ptr<InConnection>> ended;
    std::shared_ptr<InConnection> conn;
    size_t total = 0, from_peer = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Connections whose peers went away are joined and dropped here, so the list is
      // bounded by the live peers (plus those that ended since the last accept).
      for (auto it = in_.begin(); it != in_.end();) {
        if ((*it)->done()) {
          ended.push_back(std::move(*it));
          it = in_.erase(it);
        } else {
          if ((*it)->peer().compare(0, ip.size() + 1, ip + ":") == 0) ++from_peer;
          ++it;
        }
      }
      total = in_.size();
      if (total < options_.max_connections && from_peer < options_.max_connections_per_peer) {
        conn = std::make_shared<InConnection>(fd, ip + ":" + std::to_string(ntohs(peer.sin_port)),
                                              this);
        in_.push_back(conn);
      }
    }
    for (auto& c : ended) c->Join();
    ended.clear();
    if (!conn) {
      ::close(fd);
      // Logged at powers of two: a flood does not flood the log.
      const size_t n = ++refused_connections_;
      if ((n & (n - 1)) == 0) {
        Log()->warn(
            "data connection from {} refused: {} inbound connections ({} from that "
            "address; caps {} and {} per peer); {} refused so far",
            ip, total, from_peer, options_.max_connections, options_.max_connections_per_peer, n);
      }
      continue;
    }
    conn->Start(tls);
  }
}

void NetworkEnvironment::ServeInbound(int fd, const std::string& peer) {
  auto tls = TlsContext();
  if (!tls.ok()) {  // never plaintext in place of TLS
    ::close(fd);
    return;
  }
  auto conn = std::make_shared<InConnection>(fd, peer, this);
  conn->RunHere(static_cast<SSL_CTX*>(tls.value()));
}

// Accept thread: connections that did not open a channel in time are cut; OPENs that waited
// too long for their attempt's secret are refused.
void NetworkEnvironment::Sweep() {
  const auto now = Clock::now();
  std::vector<std::shared_ptr<InConnection>> cut;
  std::vector<std::unique_ptr<PendingOpen>> expired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto limit = std::chrono::milliseconds(options_.handshake_timeout_ms);
    for (auto& c : in_) {
      if (!c->done() && !c->admitted() && now - c->started() > limit) cut.push_back(c);
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      if ((*it)->deadline <= now || (*it)->conn.expired()) {
        expired.push_back(std::move(*it));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : cut) {
    ++refused_connections_;
    Log()->warn("closing the data connection from {}: no TLS handshake and valid OPEN within {} ms",
                c->peer(), options_.handshake_timeout_ms);
    c->Shutdown();
  }
  for (auto& p : expired) {
    auto c = p->conn.lock();
    if (!c) continue;
    ++refused_opens_;
    Log()->warn(
        "refused OPEN of channel {} from {}: no deployment of job attempt {} arrived "
        "within {} ms",
        p->key, p->peer, AttemptPrefixOf(p->key), options_.open_timeout_ms);
    c->Refuse(p->id);
  }
}

NetworkEnvironment::Admission NetworkEnvironment::DecideLocked(const std::string& key,
                                                               const std::string& secret,
                                                               const uint8_t* mac) {
  Admission a;
  const std::string want = OpenProof(secret, key);
  if (want.size() != kOpenMacBytes || CRYPTO_memcmp(want.data(), mac, kOpenMacBytes) != 0) {
    a.verdict = Admission::kCut;
    a.reason = "forged OPEN of channel " + key + " (wrong channel secret proof)";
    return a;
  }
  if (!opened_.insert(key).second) {
    a.verdict = Admission::kRefuse;
    a.reason = "second OPEN of channel " + key + ", already in use";
    return a;
  }
  a.verdict = Admission::kAttach;
  a.channel = GetOrCreateChannelLocked(key);
  return a;
}

NetworkEnvironment::Admission NetworkEnvironment::AdmitOpen(
    const std::shared_ptr<InConnection>& conn, uint32_t id, const std::string& key,
    const uint8_t* mac) {
  Admission a;
  const std::string attempt = AttemptPrefixOf(key);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (attempt.empty()) {
      a.reason = "OPEN of malformed channel key '" + key.substr(0, 64) + "'";
    } else if (auto s = secrets_.find(attempt); s != secrets_.end()) {
      a = DecideLocked(key, s->second, mac);
    } else {
      bool released = false;
      for (size_t slash = key.find('/'); slash != std::string::npos && !released;
           slash = key.find('/', slash + 1)) {
        released = released_.count(key.substr(0, slash + 1)) > 0;
      }
      if (released) {
        // A late producer of an attempt that ended here: a closed channel (its frames go
        // nowhere), so it fails or is cancelled as before.
        a.verdict = Admission::kAttach;
        a.channel = std::make_shared<InputChannel>(options_.buffers_per_channel);
        a.channel->Close();
        return a;
      }
      if (pending_.size() >= options_.max_pending_opens) {
        a.verdict = Admission::kCut;
        a.reason = "too many OPENs waiting for their job attempt (" +
                   std::to_string(pending_.size()) + "), the last from " + conn->peer();
      } else {
        auto p = std::make_unique<PendingOpen>();
        p->conn = conn;
        p->id = id;
        p->key = key;
        p->mac.assign(reinterpret_cast<const char*>(mac), kOpenMacBytes);
        p->peer = conn->peer();
        p->deadline = Clock::now() + std::chrono::milliseconds(options_.open_timeout_ms);
        pending_.push_back(std::move(p));
        a.verdict = Admission::kPending;
        return a;
      }
    }
  }
  if (a.verdict == Admission::kRefuse) {
    ++refused_opens_;
    Log()->warn("refused OPEN from {}: {}", conn->peer(), a.reason);
  } else if (a.verdict == Admission::kCut) {
    ++refused_opens_;
    a.reason = "refused OPEN from " + conn->peer() + ": " + a.reason;
  }
  return a;
}

void NetworkEnvironment::SetAttemptSecret(const std::string& attempt_prefix,
                                          const std::string& secret) {
  struct Decided {
    std::unique_ptr<PendingOpen> open;
    Admission a;
  };
  std::vector<Decided> decided;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = secrets_.insert_or_assign(attempt_prefix, secret);
    if (inserted) secrets_order_.push_back(attempt_prefix);
    while (secrets_.size() > kMaxReleased && !secrets_order_.empty()) {
      secrets_.erase(secrets_order_.front());
      secrets_order_.pop_front();
    }
    if (secrets_order_.size() > 2 * kMaxReleased) {
      std::erase_if(secrets_order_, [&](const std::string& p) { return !secrets_.count(p); });
    }
    for (auto p = pending_.begin(); p != pending_.end();) {
      if (AttemptPrefixOf((*p)->key) == attempt_prefix) {
        Decided d;
        d.a = DecideLocked((*p)->key, secret, reinterpret_cast<const uint8_t*>((*p)->mac.data()));
        d.open = std::move(*p);
        decided.push_back(std::move(d));
        p = pending_.erase(p);
      } else {
        ++p;
      }
    }
  }
  for (auto& d : decided) {
    auto conn = d.open->conn.lock();
    if (!conn) continue;
    switch (d.a.verdict) {
      case Admission::kAttach:
        conn->Attach(d.open->id, std::move(d.a.channel), /*on_reader=*/false);
        break;
      case Admission::kRefuse:
        ++refused_opens_;
        Log()->warn("refused OPEN from {}: {}", d.open->peer, d.a.reason);
        conn->Refuse(d.open->id);
        break;
      default:
        ++refused_opens_;
        ++refused_connections_;
        Log()->error("closing the data connection from {}: {}", d.open->peer, d.a.reason);
        conn->Shutdown();
        break;
    }
  }
}

void NetworkEnvironment::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) {
    ::shutdown(listen_fd_, SHUT_RDWR);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  std::vector<std::shared_ptr<InConnection>> in;
  std::map<std::string, std::shared_ptr<OutConnection>> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in.swap(in_);
    out.swap(out_);
    pending_.clear();
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
  return GetOrCreateChannelLocked(key);
}

std::shared_ptr<InputChannel> NetworkEnvironment::GetOrCreateChannelLocked(const std::string& key) {
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
    for (auto it = opened_.lower_bound(prefix);
         it != opened_.end() && it->compare(0, prefix.size(), prefix) == 0;) {
      it = opened_.erase(it);
    }
    // The attempt's secret goes with it (a finer prefix, one subtask's, keeps it).
    for (auto it = secrets_.lower_bound(prefix);
         it != secrets_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      it = secrets_.erase(it);
    }
  }
  for (auto& ch : closed) ch->Close();
}

Result<std::unique_ptr<ChannelSender>> NetworkEnvironment::ConnectLocal(
    const std::string& key, const std::atomic<bool>* cancel) {
  std::shared_ptr<InputChannel> ch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!opened_.insert(key).second) {
      return Status::AlreadyExists("channel " + key + " already has a producer");
    }
    ch = GetOrCreateChannelLocked(key);
  }
  return std::unique_ptr<ChannelSender>(std::make_unique<LocalSender>(std::move(ch), cancel));
}

Result<std::unique_ptr<ChannelSender>> NetworkEnvironment::ConnectRemote(
    const std::string& address, const std::string& key, const std::atomic<bool>* cancel,
    const std::string& peer_name) {
  const std::string peer = peer_name.empty() ? address : peer_name + " (" + address + ")";
  std::shared_ptr<OutConnection> conn;
  std::string secret;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto s = secrets_.find(AttemptPrefixOf(key));
    if (s == secrets_.end()) {
      return Status::FailedPrecondition("no channel secret for the job attempt of channel " + key +
                                        " (to " + peer + ")");
    }
    secret = s->second;
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
      return Status::Unavailable("cannot resolve data address " + address + ": " +
                                 gai_strerror(rc));
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
    auto link = std::make_unique<Link>(fd);
    WEIR_ASSIGN_OR_RETURN(void* tls, TlsContext());
    if (tls) {
      const auto deadline = Clock::now() + std::chrono::milliseconds(options_.handshake_timeout_ms);
      WEIR_RETURN_IF_ERROR(link->StartTls(static_cast<SSL_CTX*>(tls), /*server=*/false, deadline,
                                          "data address " + peer));
    }
    conn = std::make_shared<OutConnection>(std::move(link), address);
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
  WEIR_ASSIGN_OR_RETURN(auto opened, conn->Open(key, OpenProof(secret, key)));
  return std::unique_ptr<ChannelSender>(std::make_unique<RemoteSender>(
      conn, opened.first, opened.second, cancel, peer, options_.max_frame_bytes));
}

}  // namespace weir
