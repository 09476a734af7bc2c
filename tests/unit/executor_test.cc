// The executor's contract (lanes, bounds, shutdown) and the data plane's resource bounds:
// threads joined, inbound connections reaped, released prefixes bounded.
#include "weir/executor.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "weir/network.h"
#include "weir/thread_name.h"

namespace weir {
namespace {

// Threads of this process (entries of /proc/self/task).
int ThreadCount() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

// Waits until `pred` holds (threads take a moment to go), at most 5 s.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Threads are named as top -H and perf show them: cut to Linux's 15 bytes; the executor's
// threads are "<name>-<i>".
TEST(ThreadNameTest, NamesAreCutToFifteenBytes) {
  std::promise<long> tid;
  std::promise<void> named;
  std::thread t([&] {
    tid.set_value(syscall(SYS_gettid));
    named.get_future().wait();
  });
  const long id = tid.get_future().get();
  NameThread(t, "a-rather-long-thread-name");
  std::string comm;
  std::ifstream("/proc/self/task/" + std::to_string(id) + "/comm") >> comm;
  named.set_value();
  t.join();
  EXPECT_EQ(comm, "a-rather-long-t");

  Executor ex("uploads", 1, 4);
  std::promise<long> etid;
  ASSERT_TRUE(ex.Submit("l", [&] { etid.set_value(syscall(SYS_gettid)); }).ok());
  std::ifstream("/proc/self/task/" + std::to_string(etid.get_future().get()) + "/comm") >> comm;
  EXPECT_EQ(comm, "uploads-0");
}

TEST(ExecutorTest, LaneRunsInOrderOneAtATime) {
  Executor ex("t", 4);
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> running{0}, max_running{0};
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(ex.Submit("a", [&, i] {
                    const int r = ++running;
                    max_running = std::max(max_running.load(), r);
                    {
                      std::lock_guard<std::mutex> lock(mu);
                      order.push_back(i);
                    }
                    --running;
                  }).ok());
  }
  ex.Shutdown();  // runs everything queued
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(max_running.load(), 1);
  EXPECT_EQ(ex.lanes(), 0u) << "an idle lane's entry goes";
}

TEST(ExecutorTest, ABlockedLaneNeverDelaysAnother) {
  Executor ex("t", 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> hung_ran{0};
  // Many calls to a hung peer: they hold one thread between them.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ex.Submit("tm:hung", [&, released] {
                    released.wait();
                    ++hung_ran;
                  }).ok());
  }
  std::promise<void> other;
  auto done = other.get_future();
  ASSERT_TRUE(ex.Submit("tm:fine", [&] { other.set_value(); }).ok());
  EXPECT_EQ(done.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  release.set_value();
  ex.Shutdown();
  EXPECT_EQ(hung_ran.load(), 5);
}

TEST(ExecutorTest, UnorderedLaneRunsInParallel) {
  Executor ex("t", 3);
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ex.Submit("", [&] {
                    std::unique_lock<std::mutex> lock(mu);
                    ++arrived;
                    cv.notify_all();
                    // Only returns once all three run at the same time.
                    cv.wait_for(lock, std::chrono::seconds(5), [&] { return arrived == 3; });
                  }).ok());
  }
  ex.Shutdown();
  EXPECT_EQ(arrived, 3);
}

TEST(ExecutorTest, QueuesAreBoundedAndShutdownRefusesNewWork) {
  Executor ex("t", 1, /*max_queued_per_lane=*/3);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(ex.Submit("a", [released] { released.wait(); }).ok());
  ASSERT_TRUE(Eventually([&] { return ex.queued() == 0; }));  // the first one runs
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ex.Submit("a", [] {}).ok());
  Status full = ex.Submit("a", [] {});
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("lane 'a'"), std::string::npos) << full.message();
  EXPECT_TRUE(ex.Submit("b", [] {}).ok()) << "another lane has its own bound";
  release.set_value();
  ex.Shutdown();
  EXPECT_EQ(ex.Submit("a", [] {}).code(), StatusCode::kUnavailable);
}

TEST(ExecutorTest, ThreadsAreJoinedAndWorkThatThrowsDoesNotEndTheProcess) {
  const int before = ThreadCount();
  {
    Executor ex("t", 4);
    EXPECT_EQ(ThreadCount(), before + 4);
    ASSERT_TRUE(ex.Submit("x", [] { throw std::runtime_error("boom"); }).ok());
    std::promise<void> p;
    ASSERT_TRUE(ex.Submit("x", [&] { p.set_value(); }).ok());
    EXPECT_EQ(p.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  }
  EXPECT_EQ(ThreadCount(), before);
}

NetBuffer Eos() {
  NetBuffer b;
  b.kind = EventKind::kEndOfStream;
  return b;
}

TEST(NetworkBoundsTest, PeersComingAndGoingLeaveNoThreadsOrConnectionObjects) {
  const int before = ThreadCount();
  {
    NetworkEnvironment receiver;
    ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
    const std::string addr = "127.0.0.1:" + std::to_string(receiver.port());
    const int with_receiver = ThreadCount();
    std::atomic<bool> cancel{false};
    // 50 peers in turn (task managers restarting on new ports): each connects, sends, goes.
    for (int i = 0; i < 50; ++i) {
      NetworkEnvironment sender;
      ASSERT_TRUE(sender.Start("127.0.0.1", 0).ok());
      const std::string key = "job/" + std::to_string(i) + "/c/0/p/0";
      sender.SetAttemptSecret("job/" + std::to_string(i) + "/", "secret");
      receiver.SetAttemptSecret("job/" + std::to_string(i) + "/", "secret");
      auto s = sender.ConnectRemote(addr, key, &cancel);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      ASSERT_TRUE(s.value()->Send(Eos()).ok());
      auto ch = receiver.GetOrCreateChannel(key);
      s.value().reset();
      sender.Stop();
      receiver.ReleaseChannels("job/" + std::to_string(i) + "/");
    }
    // One more accept reaps the connections that ended.
    NetworkEnvironment last;
    ASSERT_TRUE(last.Start("127.0.0.1", 0).ok());
    last.SetAttemptSecret("job/x/", "secret");
    receiver.SetAttemptSecret("job/x/", "secret");
    ASSERT_TRUE(last.ConnectRemote(addr, "job/x/c/0/p/0", &cancel).ok());
    EXPECT_TRUE(Eventually([&] { return receiver.inbound_connections() <= 2; }))
        << receiver.inbound_connections() << " inbound connection objects after 50 peers left";
    last.Stop();
    // Readers of ended connections are joined: the count goes back to the receiver's own.
    EXPECT_TRUE(Eventually([&] { return ThreadCount() <= with_receiver + 1; }))
        << ThreadCount() << " threads, " << with_receiver << " with the receiver alone";
  }
  EXPECT_TRUE(Eventually([&] { return ThreadCount() == before; }))
      << ThreadCount() << " threads after Stop(), " << before << " before";
}

TEST(NetworkBoundsTest, ReleasedPrefixesAreBounded) {
  NetworkEnvironment env;
  // Subtasks of one attempt end one by one, then the attempt: one prefix is kept.
  for (int i = 0; i < 100; ++i) env.ReleaseChannels("job/0/t/" + std::to_string(i) + "/");
  EXPECT_EQ(env.released_prefixes(), 100u);
  env.ReleaseChannels("job/0/");
  EXPECT_EQ(env.released_prefixes(), 1u);
  // A late producer of that attempt still gets a closed channel.
  auto ch = env.GetOrCreateChannel("job/0/t/3/p/0");
  std::atomic<bool> cancel{false};
  EXPECT_FALSE(ch->PushBlocking(Eos(), &cancel).ok()) << "closed";
  // Months of job attempts: the oldest prefixes go.
  for (int i = 1; i <= 10000; ++i) env.ReleaseChannels("job/" + std::to_string(i) + "/");
  EXPECT_LE(env.released_prefixes(), 4096u);
}

}  // namespace
}  // namespace weir
