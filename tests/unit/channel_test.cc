// Flow control and ordering of local channels, the input gate, and the TCP data plane.
#include <gtest/gtest.h>

#include <thread>

#include "weir/channel.h"
#include "weir/network.h"

namespace weir {
namespace {

NetBuffer Data(int64_t n) {
  NetBuffer b;
  b.kind = EventKind::kData;
  b.records = 1;
  b.arg = n;
  b.bytes.assign(static_cast<size_t>(100 + n % 7), static_cast<uint8_t>(n));
  return b;
}

TEST(ChannelTest, LocalProducerBlocksWhenChannelIsFull) {
  auto ch = std::make_shared<InputChannel>(2);
  std::atomic<bool> cancel{false};
  ASSERT_TRUE(ch->PushBlocking(Data(0), &cancel).ok());
  ASSERT_TRUE(ch->PushBlocking(Data(1), &cancel).ok());
  std::atomic<bool> third_sent{false};
  std::thread producer([&] {
    ASSERT_TRUE(ch->PushBlocking(Data(2), &cancel).ok());
    third_sent = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(third_sent.load()) << "a full channel must back-pressure the producer";
  NetBuffer b;
  ASSERT_TRUE(ch->Pop(&b));
  EXPECT_EQ(b.arg, 0);
  producer.join();
  EXPECT_TRUE(third_sent.load());
  ASSERT_TRUE(ch->Pop(&b));
  EXPECT_EQ(b.arg, 1);
  ASSERT_TRUE(ch->Pop(&b));
  EXPECT_EQ(b.arg, 2);
  EXPECT_FALSE(ch->Pop(&b));
}

TEST(ChannelTest, CancelAndCloseReleaseABlockedProducer) {
  auto ch = std::make_shared<InputChannel>(1);
  std::atomic<bool> cancel{false};
  ASSERT_TRUE(ch->PushBlocking(Data(0), &cancel).ok());
  Status st;
  std::thread producer([&] { st = ch->PushBlocking(Data(1), &cancel); });
  cancel = true;
  producer.join();
  EXPECT_EQ(st.code(), StatusCode::kCancelled);

  cancel = false;
  std::thread producer2([&] { st = ch->PushBlocking(Data(1), &cancel); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ch->Close();
  producer2.join();
  EXPECT_EQ(st.code(), StatusCode::kCancelled);
}

TEST(ChannelTest, GateDeliversEveryBufferOfEveryChannelInChannelOrder) {
  InputGate gate;
  auto a = std::make_shared<InputChannel>(4);
  auto b = std::make_shared<InputChannel>(4);
  std::atomic<bool> cancel{false};
  ASSERT_TRUE(a->PushBlocking(Data(100), &cancel).ok());  // before attach: still delivered
  EXPECT_EQ(gate.AddChannel(a), 0);
  EXPECT_EQ(gate.AddChannel(b), 1);
  const int kN = 2000;
  std::thread pa([&] {
    for (int i = 101; i < 100 + kN; ++i) ASSERT_TRUE(a->PushBlocking(Data(i), &cancel).ok());
  });
  std::thread pb([&] {
    for (int i = 0; i < kN; ++i) ASSERT_TRUE(b->PushBlocking(Data(i), &cancel).ok());
  });
  int64_t next[2] = {100, 0};
  int got = 0;
  while (got < 2 * kN) {
    int ch;
    NetBuffer buf;
    Status err;
    auto r = gate.Poll(&ch, &buf, std::chrono::milliseconds(1000), &err);
    ASSERT_EQ(r, InputGate::Next::kBuffer);
    EXPECT_EQ(buf.arg, next[ch]++) << "channel " << ch;
    ++got;
  }
  pa.join();
  pb.join();
}

TEST(ChannelTest, FailedChannelIsReportedAfterItsBuffers) {
  InputGate gate;
  auto a = std::make_shared<InputChannel>(4);
  gate.AddChannel(a);
  a->PushNoWait(Data(1));
  a->Fail(Status::Unavailable("connection from x lost"));
  int ch;
  NetBuffer buf;
  Status err;
  EXPECT_EQ(gate.Poll(&ch, &buf, std::chrono::milliseconds(100), &err), InputGate::Next::kBuffer);
  EXPECT_EQ(gate.Poll(&ch, &buf, std::chrono::milliseconds(100), &err), InputGate::Next::kError);
  EXPECT_NE(err.message().find("connection from x lost"), std::string::npos);
}

// Two started environments on 127.0.0.1 that share the attempt secret of "job/0/".
struct NetworkPair {
  explicit NetworkPair(const NetworkOptions& opts) : receiver(opts), sender(opts) {
    ok = receiver.Start("127.0.0.1", 0).ok() && sender.Start("127.0.0.1", 0).ok();
    addr = "127.0.0.1:" + std::to_string(receiver.port());
    receiver.SetAttemptSecret("job/0/", "secret");
    sender.SetAttemptSecret("job/0/", "secret");
  }
  NetworkEnvironment receiver, sender;
  std::string addr;
  bool ok = false;
};

TEST(NetworkTest, RemoteChannelIsOrderedLosslessAndCreditBounded) {
  NetworkOptions opts;
  opts.buffers_per_channel = 3;
  NetworkPair net(opts);
  ASSERT_TRUE(net.ok);
  NetworkEnvironment &receiver = net.receiver, &sender = net.sender;
  const std::string& addr = net.addr;
  std::atomic<bool> cancel{false};
  const int kN = 500;
  auto s1 = sender.ConnectRemote(addr, "job/0/c/0/p/0", &cancel);
  auto s2 = sender.ConnectRemote(addr, "job/0/c/0/p/1", &cancel);
  ASSERT_TRUE(s1.ok() && s2.ok());
  std::atomic<int> sent{0};
  std::thread p1([&] {
    for (int i = 0; i < kN; ++i) {
      ASSERT_TRUE(s1.value()->Send(Data(i)).ok());
      ++sent;
    }
  });
  std::thread p2([&] {
    for (int i = 0; i < kN; ++i) ASSERT_TRUE(s2.value()->Send(Data(i)).ok());
  });
  // Nobody consumes yet: the first sender must stop after its credits.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sent.load(), 3);
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel("job/0/c/0/p/0"));
  gate.AddChannel(receiver.GetOrCreateChannel("job/0/c/0/p/1"));
  int64_t next[2] = {0, 0};
  for (int got = 0; got < 2 * kN; ++got) {
    int ch;
    NetBuffer buf;
    Status err;
    ASSERT_EQ(gate.Poll(&ch, &buf, std::chrono::seconds(5), &err), InputGate::Next::kBuffer);
    EXPECT_EQ(buf.arg, next[ch]);
    EXPECT_EQ(buf.bytes, Data(next[ch]).bytes);
    ++next[ch];
  }
  p1.join();
  p2.join();
}

// A frame-sized buffer whose every byte depends on n and its position.
NetBuffer Big(int64_t n) {
  NetBuffer b;
  b.kind = EventKind::kData;
  b.records = 1;
  b.arg = n;
  b.bytes.resize(static_cast<size_t>(20000 + n % 13));
  for (size_t i = 0; i < b.bytes.size(); ++i) b.bytes[i] = static_cast<uint8_t>(n * 31 + i);
  return b;
}

TEST(ChannelTest, ConsumedBuffersComeBackToTheProducerAsSpares) {
  auto ch = std::make_shared<InputChannel>(8);
  std::atomic<bool> cancel{false};
  NetBuffer first = Big(1);
  const uint8_t* first_storage = first.bytes.data();
  ASSERT_TRUE(ch->PushBlocking(std::move(first), &cancel).ok());
  ASSERT_TRUE(ch->PushBlocking(Big(2), &cancel).ok());
  NetBuffer consumer;
  ASSERT_TRUE(ch->Pop(&consumer));
  EXPECT_EQ(consumer.bytes.data(), first_storage);
  ASSERT_TRUE(ch->Pop(&consumer));  // buffer 1 is done with: kept as a spare
  EXPECT_EQ(consumer.bytes, Big(2).bytes);
  Bytes spare;
  ASSERT_TRUE(ch->PushBlocking(Big(3), &cancel, nullptr, &spare).ok());
  EXPECT_EQ(spare.data(), first_storage) << "the producer gets the consumed buffer back";

  // Small buffers (event bodies) are not kept, and at most kMaxSpares are.
  NetBuffer event;
  event.kind = EventKind::kBarrier;
  event.bytes.resize(16);
  ASSERT_TRUE(ch->PushBlocking(std::move(event), &cancel).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ch->PushBlocking(Big(10 + i), &cancel).ok());
  int popped = 0;
  while (ch->Pop(&consumer)) ++popped;
  EXPECT_EQ(popped, 7);  // 3, the event, 10..14
  size_t spares = 0;
  for (int i = 0; i < 8; ++i) {  // producers only: take every spare there is
    Bytes s;
    ASSERT_TRUE(ch->PushBlocking(Big(0), &cancel, nullptr, &s).ok());
    if (s.capacity() == 0) continue;
    EXPECT_GE(s.capacity(), InputChannel::kMinSpareBytes);
    ++spares;
  }
  EXPECT_EQ(spares, InputChannel::kMaxSpares);
}

// Receivers read frames into recycled buffers and senders refill the buffers they sent: every
// byte still arrives as sent, in order, over many rounds of reuse.
TEST(NetworkTest, RecycledBuffersCarryEveryByte) {
  NetworkOptions opts;
  opts.buffers_per_channel = 2;
  NetworkPair net(opts);
  ASSERT_TRUE(net.ok);
  NetworkEnvironment &receiver = net.receiver, &sender = net.sender;
  const std::string& addr = net.addr;
  std::atomic<bool> cancel{false};
  auto s = sender.ConnectRemote(addr, "job/0/c/0/p/0", &cancel);
  ASSERT_TRUE(s.ok());
  const int kN = 300;
  int reused = 0;
  std::thread producer([&] {
    for (int i = 0; i < kN; ++i) {
      NetBuffer b = Big(i);
      Bytes spare = s.value()->TakeSpare();
      if (spare.capacity() > 0) {
        ++reused;
        spare.assign(b.bytes.begin(), b.bytes.end());
        b.bytes = std::move(spare);
      }
      ASSERT_TRUE(s.value()->Send(std::move(b)).ok());
    }
  });
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel("job/0/c/0/p/0"));
  NetBuffer buf;  // reused, as a task does: each Pop recycles the previous buffer
  for (int i = 0; i < kN; ++i) {
    int ch;
    Status err;
    ASSERT_EQ(gate.Poll(&ch, &buf, std::chrono::seconds(5), &err), InputGate::Next::kBuffer);
    ASSERT_EQ(buf.arg, i);
    ASSERT_EQ(buf.bytes, Big(i).bytes) << "buffer " << i;
  }
  producer.join();
  EXPECT_GE(reused, kN - 1) << "a sent buffer is the sender's next one";
}

TEST(NetworkTest, LostSenderFailsTheChannel) {
  NetworkEnvironment receiver;
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  const std::string addr = "127.0.0.1:" + std::to_string(receiver.port());
  std::atomic<bool> cancel{false};
  InputGate gate;
  receiver.SetAttemptSecret("job/0/", "secret");
  gate.AddChannel(receiver.GetOrCreateChannel("job/0/c/0/p/0"));
  {
    NetworkEnvironment sender;
    ASSERT_TRUE(sender.Start("127.0.0.1", 0).ok());
    sender.SetAttemptSecret("job/0/", "secret");
    auto s = sender.ConnectRemote(addr, "job/0/c/0/p/0", &cancel);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s.value()->Send(Data(1)).ok());
    sender.Stop();  // the connection closes without an end of stream
  }
  int ch;
  NetBuffer buf;
  Status err;
  EXPECT_EQ(gate.Poll(&ch, &buf, std::chrono::seconds(5), &err), InputGate::Next::kBuffer);
  EXPECT_EQ(gate.Poll(&ch, &buf, std::chrono::seconds(5), &err), InputGate::Next::kError);
  EXPECT_EQ(err.code(), StatusCode::kUnavailable);
}

TEST(NetworkTest, ConnectToNothingIsAnError) {
  NetworkEnvironment sender;
  std::atomic<bool> cancel{false};
  auto none = sender.ConnectRemote("127.0.0.1:1", "job/0/c/0/p/0", &cancel);
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition) << "no channel secret";
  sender.SetAttemptSecret("job/0/", "secret");
  auto s = sender.ConnectRemote("127.0.0.1:1", "job/0/c/0/p/0", &cancel);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  auto bad = sender.ConnectRemote("no-port", "job/0/c/0/p/0", &cancel);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace weir

namespace weir {
namespace {

TEST(ChannelTest, BlockedChannelsAreHeldBackInOrderUntilUnblocked) {
  InputGate gate;
  auto a = std::make_shared<InputChannel>(8);
  auto b = std::make_shared<InputChannel>(8);
  gate.AddChannel(a);
  gate.AddChannel(b);
  std::atomic<bool> cancel{false};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a->PushBlocking(Data(i), &cancel).ok());
  ASSERT_TRUE(b->PushBlocking(Data(10), &cancel).ok());
  gate.Block(0);
  int ch;
  NetBuffer buf;
  Status err;
  ASSERT_EQ(gate.Poll(&ch, &buf, std::chrono::milliseconds(50), &err), InputGate::Next::kBuffer);
  EXPECT_EQ(ch, 1);
  EXPECT_EQ(buf.arg, 10);
  // Only the blocked channel has data: nothing comes out.
  EXPECT_EQ(gate.Poll(&ch, &buf, std::chrono::milliseconds(50), &err), InputGate::Next::kTimeout);
  gate.UnblockAll();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(gate.Poll(&ch, &buf, std::chrono::milliseconds(50), &err), InputGate::Next::kBuffer);
    EXPECT_EQ(ch, 0);
    EXPECT_EQ(buf.arg, i);
  }
}

}  // namespace
}  // namespace weir
