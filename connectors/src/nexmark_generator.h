// The Nexmark event generator (Person, Auction, Bid) of the `nexmark` source: the model of
// Beam's and Flink's Nexmark generators (proportions 1 / 3 / 46 per 50 events, hot auctions,
// bidders and sellers, "active" people and in-flight auctions, prices 10^(6u) * 100 cents,
// padding to average byte sizes, event time from an events-per-second rate), with a random
// stream seeded per event so that event n is a pure function of (config, n): any subtask can
// generate any event, and the union over subtasks is the same sequence for any parallelism.
// docs/nexmark.md describes the model and the columns; tests/nexmark/reference.py is an
// independent implementation of the same model.
//
// A generator is immutable after construction except for its reusable scratch buffers: one
// generator per subtask thread. Generating an event writes into a Row's values, reusing their
// string capacity (no allocation in the steady state).
#pragma once

#include <cstdint>
#include <string>

#include "weir/types.h"

namespace weir::nexmark {

enum class EventKind : int { kPerson = 0, kAuction = 1, kBid = 2 };

// Which events a source emits, and so its columns.
enum class EventSet { kPerson, kAuction, kBid, kAll };

struct GeneratorConfig {
  int64_t seed = 0;                      // 0: Beam's per-event seeds (the event id)
  int64_t events_per_second = 10000;     // event-time rate: event n is at base + n * 1000 / rate
  int64_t base_time_ms = 1704067200000;  // 2024-01-01 00:00:00 UTC
  int64_t avg_person_bytes = 200;
  int64_t avg_auction_bytes = 500;
  int64_t avg_bid_bytes = 100;
  int64_t hot_auction_ratio = 2;
  int64_t hot_sellers_ratio = 4;
  int64_t hot_bidders_ratio = 4;
  int64_t num_in_flight_auctions = 100;
  int64_t num_active_people = 1000;
};

constexpr int64_t kPersonProportion = 1;
constexpr int64_t kAuctionProportion = 3;
constexpr int64_t kBidProportion = 46;
constexpr int64_t kProportionDenominator = kPersonProportion + kAuctionProportion + kBidProportion;
constexpr int64_t kFirstPersonId = 1000;
constexpr int64_t kFirstAuctionId = 1000;
constexpr int64_t kFirstCategoryId = 10;

inline EventKind KindOf(int64_t event_number) {
  int64_t rem = event_number % kProportionDenominator;
  if (rem < kPersonProportion) return EventKind::kPerson;
  if (rem < kPersonProportion + kAuctionProportion) return EventKind::kAuction;
  return EventKind::kBid;
}

inline bool InSet(EventSet set, EventKind kind) {
  switch (set) {
    case EventSet::kPerson:
      return kind == EventKind::kPerson;
    case EventSet::kAuction:
      return kind == EventKind::kAuction;
    case EventSet::kBid:
      return kind == EventKind::kBid;
    case EventSet::kAll:
      return true;
  }
  return false;
}

// The output schema of a source emitting `set` (docs/nexmark.md).
Schema SchemaFor(EventSet set);

// java.util.Random's linear congruential generator (its published algorithm), so the draws
// follow Beam's generator step by step.
class JavaRandom {
 public:
  explicit JavaRandom(int64_t seed) { SetSeed(seed); }
  void SetSeed(int64_t seed) { state_ = (static_cast<uint64_t>(seed) ^ kMultiplier) & kMask; }
  int32_t Next(int bits) {
    state_ = (state_ * kMultiplier + 0xB) & kMask;
    return static_cast<int32_t>(static_cast<uint32_t>(state_ >> (48 - bits)));
  }
  int32_t NextInt() { return Next(32); }
  // Uniform in [0, bound), bound > 0.
  int32_t NextInt(int32_t bound);
  int64_t NextLong() {
    auto hi = static_cast<uint64_t>(static_cast<int64_t>(Next(32)));
    auto lo = static_cast<uint64_t>(static_cast<int64_t>(Next(32)));
    return static_cast<int64_t>((hi << 32) + lo);
  }
  double NextDouble() {
    auto hi = static_cast<int64_t>(Next(26));
    auto lo = static_cast<int64_t>(Next(27));
    return static_cast<double>((hi << 27) + lo) * 0x1.0p-53;
  }

 private:
  static constexpr uint64_t kMultiplier = 0x5DEECE66DULL;
  static constexpr uint64_t kMask = (1ULL << 48) - 1;
  uint64_t state_ = 0;
};

class Generator {
 public:
  Generator(GeneratorConfig config, EventSet set);

  const GeneratorConfig& config() const { return config_; }
  EventSet set() const { return set_; }
  const Schema& schema() const { return schema_; }
  // Event time of event n.
  int64_t TimestampOf(int64_t event_number) const;
  // Writes event n (which must be in the set) into `row`, sized to schema().size().
  void Generate(int64_t event_number, Row& row);

  // The model's id rules (base 0, without kFirst*Id), public for tests.
  static int64_t LastBase0PersonId(int64_t event_id);
  static int64_t LastBase0AuctionId(int64_t event_id);

 private:
  // Column indexes of each kind's fields in the output row (-1: not in this set's schema).
  struct Columns {
    int event_type = -1, date_time = -1;
    int p_id = -1, p_name = -1, p_email = -1, p_card = -1, p_city = -1, p_state = -1, p_extra = -1;
    int a_id = -1, a_item = -1, a_desc = -1, a_initial = -1, a_reserve = -1, a_expires = -1,
        a_seller = -1, a_category = -1, a_extra = -1;
    int b_auction = -1, b_bidder = -1, b_price = -1, b_channel = -1, b_url = -1, b_extra = -1;
  };

  void Person(int64_t id, JavaRandom& rnd, Row& row);
  void Auction(int64_t n, int64_t id, int64_t ts, JavaRandom& rnd, Row& row);
  void Bid(int64_t id, JavaRandom& rnd, Row& row);
  int64_t NextBase0PersonId(int64_t event_id, JavaRandom& rnd) const;
  int64_t NextBase0AuctionId(int64_t event_id, JavaRandom& rnd) const;

  GeneratorConfig config_;
  EventSet set_;
  Schema schema_;
  Columns col_;
  std::string hot_urls_[4];
};

// Appends a random string of 3 .. max_len - 1 characters (letters, and `special` with
// probability 1/13), then trims whitespace at both ends of what it appended (Beam's nextString).
void AppendNextString(JavaRandom& rnd, int max_len, char special, std::string* out);
// Appends exactly `len` letters, six per 32-bit draw (Beam's nextExactString; negative draws
// give letters below 'a', as in Java).
void AppendExactString(JavaRandom& rnd, int64_t len, std::string* out);
// The padding that brings an event of `current` bytes to `average` on average (Beam's nextExtra).
void AppendExtra(JavaRandom& rnd, int64_t current, int64_t average, std::string* out);
// A price in cents: round(10^(6u) * 100).
int64_t NextPrice(JavaRandom& rnd);
// The url of non-hot channel k (deterministic in k).
void AppendChannelUrl(int32_t k, std::string* out);

}  // namespace weir::nexmark
