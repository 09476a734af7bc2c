#include "nexmark_generator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace weir::nexmark {
namespace {

constexpr int kNumCategories = 5;
constexpr int kIdLead = 10;     // yet-to-be-created people / auctions a random pick may name
constexpr int kHotRatio = 100;  // hot ids: the first (second for bidders) of each 100
constexpr int kHotChannelsRatio = 100;
constexpr int kChannels = 10000;
// Per-event seed: the event id, plus the configured seed times the golden ratio (so seed 0 is
// Beam's `new Random(eventId)`).
constexpr uint64_t kSeedStep = 0x9E3779B97F4A7C15ULL;

constexpr const char* kHotChannels[4] = {"Google", "Facebook", "Baidu", "Apple"};
constexpr const char* kStates[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr const char* kCities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                   "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
constexpr const char* kFirstNames[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                       "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
constexpr const char* kLastNames[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                      "Walton", "Smith",  "Jones",   "Noris"};

template <size_t N>
const char* Pick(JavaRandom& rnd, const char* const (&list)[N]) {
  return list[rnd.NextInt(static_cast<int32_t>(N))];
}

// A random value in [0, n) (Beam's LongGenerator: nextInt below 2^31 - 1, else |nextLong % n|).
int64_t NextLong(JavaRandom& rnd, int64_t n) {
  if (n < 2147483647) return rnd.NextInt(static_cast<int32_t>(n));
  int64_t r = rnd.NextLong() % n;
  return r < 0 ? -r : r;
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

void SetString(Value& v) {
  v.type = Type::kString;
  v.s.clear();
}

// Java's Integer.reverse.
uint32_t Reverse32(uint32_t x) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i) {
    r = (r << 1) | (x & 1);
    x >>= 1;
  }
  return r;
}

void AppendBaseUrl(JavaRandom& rnd, std::string* out) {
  out->append("https://www.nexmark.com/");
  for (int i = 0; i < 3; ++i) {
    AppendNextString(rnd, 5, '_', out);
    out->push_back('/');
  }
  out->append("item.htm?query=1");
}

}  // namespace

int32_t JavaRandom::NextInt(int32_t bound) {
  if ((bound & -bound) == bound) {
    return static_cast<int32_t>((static_cast<int64_t>(bound) * Next(31)) >> 31);
  }
  int32_t bits, val;
  do {
    bits = Next(31);
    val = bits % bound;
    // Java's overflow test: bits - val + (bound - 1) < 0 as a 32-bit int.
  } while (static_cast<int32_t>(static_cast<uint32_t>(bits) - static_cast<uint32_t>(val) +
                                static_cast<uint32_t>(bound - 1)) < 0);
  return val;
}

void AppendNextString(JavaRandom& rnd, int max_len, char special, std::string* out) {
  const size_t start = out->size();
  int len = 3 + rnd.NextInt(max_len - 3);
  while (len-- > 0) {
    if (rnd.NextInt(13) == 0) {
      out->push_back(special);
    } else {
      out->push_back(static_cast<char>('a' + rnd.NextInt(26)));
    }
  }
  // Java's String.trim(): characters <= ' ' at both ends.
  while (out->size() > start && static_cast<unsigned char>(out->back()) <= ' ') out->pop_back();
  size_t first = start;
  while (first < out->size() && static_cast<unsigned char>((*out)[first]) <= ' ') ++first;
  out->erase(start, first - start);
}

void AppendExactString(JavaRandom& rnd, int64_t len, std::string* out) {
  int32_t r = 0;
  int left = 0;
  while (len-- > 0) {
    if (left == 0) {
      r = rnd.NextInt();
      left = 6;
    }
    out->push_back(static_cast<char>('a' + r % 26));  // % and / truncate toward zero, as Java's
    r /= 26;
    --left;
  }
}

void AppendExtra(JavaRandom& rnd, int64_t current, int64_t average, std::string* out) {
  if (current > average) return;
  average -= current;
  auto delta = static_cast<int64_t>(std::floor(static_cast<double>(average) * 0.2 + 0.5));
  int64_t size = average - delta + (delta == 0 ? 0 : rnd.NextInt(static_cast<int32_t>(2 * delta)));
  AppendExactString(rnd, size, out);
}

int64_t NextPrice(JavaRandom& rnd) {
  return static_cast<int64_t>(std::floor(std::pow(10.0, rnd.NextDouble() * 6.0) * 100.0 + 0.5));
}

void AppendChannelUrl(int32_t k, std::string* out) {
  JavaRandom rnd(k);
  AppendBaseUrl(rnd, out);
  if (rnd.NextInt(10) > 0) {
    out->append("&channel_id=");
    auto id = static_cast<int64_t>(static_cast<int32_t>(Reverse32(static_cast<uint32_t>(k))));
    AppendInt(id < 0 ? -id : id, out);
  }
}

Schema SchemaFor(EventSet set) {
  // Each kind's columns in Flink's order; `all` takes them prefixed, without their dateTime.
  struct Kind {
    EventSet set;
    const char* prefix;
    std::vector<Field> fields;
  };
  const Type kI = Type::kInt64, kS = Type::kString, kT = Type::kTimestamp;
  static const Kind kKinds[] = {
      {EventSet::kPerson,
       "person_",
       {{"id", kI},
        {"name", kS},
        {"emailAddress", kS},
        {"creditCard", kS},
        {"city", kS},
        {"state", kS},
        {"dateTime", kT},
        {"extra", kS}}},
      {EventSet::kAuction,
       "auction_",
       {{"id", kI},
        {"itemName", kS},
        {"description", kS},
        {"initialBid", kI},
        {"reserve", kI},
        {"dateTime", kT},
        {"expires", kT},
        {"seller", kI},
        {"category", kI},
        {"extra", kS}}},
      {EventSet::kBid,
       "bid_",
       {{"auction", kI},
        {"bidder", kI},
        {"price", kI},
        {"channel", kS},
        {"url", kS},
        {"dateTime", kT},
        {"extra", kS}}},
  };
  Schema s;
  const bool all = set == EventSet::kAll;
  if (all) {
    s.Add("event_type", kI);
    s.Add("dateTime", kT);
  }
  for (const Kind& k : kKinds) {
    if (!all && k.set != set) continue;
    for (const Field& f : k.fields) {
      if (!all) {
        s.Add(f.name, f.type);
      } else if (f.name != "dateTime") {
        s.Add(k.prefix + f.name, f.type);
      }
    }
  }
  return s;
}

Generator::Generator(GeneratorConfig config, EventSet set)
    : config_(config), set_(set), schema_(SchemaFor(set)) {
  auto at = [&](const char* name) { return schema_.IndexOf(name); };
  const bool all = set == EventSet::kAll;
  col_.date_time = at("dateTime");
  if (all) col_.event_type = at("event_type");
  // The kinds this set has: their columns by name (prefixed in `all`).
  auto find = [&](EventSet kind, const char* prefix,
                  std::initializer_list<std::pair<int*, const char*>> cols) {
    if (!all && set != kind) return;
    for (auto [index, name] : cols) *index = at((std::string(all ? prefix : "") + name).c_str());
  };
  find(EventSet::kPerson, "person_",
       {{&col_.p_id, "id"},
        {&col_.p_name, "name"},
        {&col_.p_email, "emailAddress"},
        {&col_.p_card, "creditCard"},
        {&col_.p_city, "city"},
        {&col_.p_state, "state"},
        {&col_.p_extra, "extra"}});
  find(EventSet::kAuction, "auction_",
       {{&col_.a_id, "id"},
        {&col_.a_item, "itemName"},
        {&col_.a_desc, "description"},
        {&col_.a_initial, "initialBid"},
        {&col_.a_reserve, "reserve"},
        {&col_.a_expires, "expires"},
        {&col_.a_seller, "seller"},
        {&col_.a_category, "category"},
        {&col_.a_extra, "extra"}});
  find(EventSet::kBid, "bid_",
       {{&col_.b_auction, "auction"},
        {&col_.b_bidder, "bidder"},
        {&col_.b_price, "price"},
        {&col_.b_channel, "channel"},
        {&col_.b_url, "url"},
        {&col_.b_extra, "extra"}});
  for (int i = 0; i < 4; ++i) {
    JavaRandom rnd(kChannels + i);
    AppendBaseUrl(rnd, &hot_urls_[i]);
  }
}

int64_t Generator::TimestampOf(int64_t event_number) const {
  // n * 1000 / rate without overflow for any n below 2^63 / 1000 (split n).
  const int64_t rate = config_.events_per_second;
  return config_.base_time_ms + (event_number / rate) * 1000 + (event_number % rate) * 1000 / rate;
}

int64_t Generator::LastBase0PersonId(int64_t event_id) {
  int64_t epoch = event_id / kProportionDenominator;
  int64_t offset = event_id % kProportionDenominator;
  if (offset >= kPersonProportion) offset = kPersonProportion - 1;
  return epoch * kPersonProportion + offset;
}

int64_t Generator::LastBase0AuctionId(int64_t event_id) {
  int64_t epoch = event_id / kProportionDenominator;
  int64_t offset = event_id % kProportionDenominator;
  if (offset < kPersonProportion) {
    --epoch;  // a person: the last auction of the previous epoch
    offset = kAuctionProportion - 1;
  } else if (offset >= kPersonProportion + kAuctionProportion) {
    offset = kAuctionProportion - 1;  // a bid: the last auction of this epoch
  } else {
    offset -= kPersonProportion;
  }
  return epoch * kAuctionProportion + offset;
}

int64_t Generator::NextBase0PersonId(int64_t event_id, JavaRandom& rnd) const {
  int64_t people = LastBase0PersonId(event_id) + 1;
  int64_t active = std::min(people, config_.num_active_people);
  return people - active + NextLong(rnd, active + kIdLead);
}

int64_t Generator::NextBase0AuctionId(int64_t event_id, JavaRandom& rnd) const {
  int64_t max_auction = LastBase0AuctionId(event_id);
  int64_t min_auction = std::max<int64_t>(max_auction - config_.num_in_flight_auctions, 0);
  return min_auction + NextLong(rnd, max_auction - min_auction + 1 + kIdLead);
}

void Generator::Generate(int64_t n, Row& row) {
  JavaRandom rnd(static_cast<int64_t>(static_cast<uint64_t>(n) +
                                      static_cast<uint64_t>(config_.seed) * kSeedStep));
  const int64_t ts = TimestampOf(n);
  const EventKind kind = KindOf(n);
  row[col_.date_time].SetTimestamp(ts);
  if (set_ == EventSet::kAll) {
    row[col_.event_type].SetInt64(static_cast<int>(kind));
    for (int c = 2; c < static_cast<int>(row.size()); ++c) row[c].SetNull();
  }
  switch (kind) {
    case EventKind::kPerson:
      return Person(n, rnd, row);
    case EventKind::kAuction:
      return Auction(n, n, ts, rnd, row);
    case EventKind::kBid:
      return Bid(n, rnd, row);
  }
}

void Generator::Person(int64_t id, JavaRandom& rnd, Row& row) {
  row[col_.p_id].SetInt64(LastBase0PersonId(id) + kFirstPersonId);
  Value& name = row[col_.p_name];
  SetString(name);
  name.s.append(Pick(rnd, kFirstNames));
  name.s.push_back(' ');
  name.s.append(Pick(rnd, kLastNames));
  Value& email = row[col_.p_email];
  SetString(email);
  AppendNextString(rnd, 7, ' ', &email.s);
  email.s.push_back('@');
  AppendNextString(rnd, 5, ' ', &email.s);
  email.s.append(".com");
  Value& card = row[col_.p_card];
  SetString(card);
  for (int i = 0; i < 4; ++i) {
    if (i > 0) card.s.push_back(' ');
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04d", static_cast<int>(rnd.NextInt(10000)));
    card.s.append(buf, 4);
  }
  Value& city = row[col_.p_city];
  SetString(city);
  city.s.append(Pick(rnd, kCities));
  Value& state = row[col_.p_state];
  SetString(state);
  state.s.append(Pick(rnd, kStates));
  int64_t size = 8 + static_cast<int64_t>(name.s.size() + email.s.size() + card.s.size() +
                                          city.s.size() + state.s.size());
  Value& extra = row[col_.p_extra];
  SetString(extra);
  AppendExtra(rnd, size, config_.avg_person_bytes, &extra.s);
}

void Generator::Auction(int64_t n, int64_t id, int64_t ts, JavaRandom& rnd, Row& row) {
  row[col_.a_id].SetInt64(LastBase0AuctionId(id) + kFirstAuctionId);
  int64_t seller;
  if (rnd.NextInt(static_cast<int32_t>(config_.hot_sellers_ratio)) > 0) {
    seller = (LastBase0PersonId(id) / kHotRatio) * kHotRatio;
  } else {
    seller = NextBase0PersonId(id, rnd);
  }
  row[col_.a_seller].SetInt64(seller + kFirstPersonId);
  row[col_.a_category].SetInt64(kFirstCategoryId + rnd.NextInt(kNumCategories));
  int64_t initial = NextPrice(rnd);
  row[col_.a_initial].SetInt64(initial);
  // Auctions last 1 .. 2 x the time until num_in_flight_auctions more auctions exist.
  int64_t events_ahead =
      config_.num_in_flight_auctions * kProportionDenominator / kAuctionProportion;
  int64_t horizon = TimestampOf(n + events_ahead) - ts;
  row[col_.a_expires].SetTimestamp(ts + 1 + NextLong(rnd, std::max<int64_t>(horizon * 2, 1)));
  Value& item = row[col_.a_item];
  SetString(item);
  AppendNextString(rnd, 20, ' ', &item.s);
  Value& desc = row[col_.a_desc];
  SetString(desc);
  AppendNextString(rnd, 100, ' ', &desc.s);
  row[col_.a_reserve].SetInt64(initial + NextPrice(rnd));
  int64_t size = 8 + static_cast<int64_t>(item.s.size() + desc.s.size()) + 8 * 5;
  Value& extra = row[col_.a_extra];
  SetString(extra);
  AppendExtra(rnd, size, config_.avg_auction_bytes, &extra.s);
}

void Generator::Bid(int64_t id, JavaRandom& rnd, Row& row) {
  int64_t auction;
  if (rnd.NextInt(static_cast<int32_t>(config_.hot_auction_ratio)) > 0) {
    auction = (LastBase0AuctionId(id) / kHotRatio) * kHotRatio;
  } else {
    auction = NextBase0AuctionId(id, rnd);
  }
  row[col_.b_auction].SetInt64(auction + kFirstAuctionId);
  int64_t bidder;
  if (rnd.NextInt(static_cast<int32_t>(config_.hot_bidders_ratio)) > 0) {
    bidder = (LastBase0PersonId(id) / kHotRatio) * kHotRatio + 1;
  } else {
    bidder = NextBase0PersonId(id, rnd);
  }
  row[col_.b_bidder].SetInt64(bidder + kFirstPersonId);
  row[col_.b_price].SetInt64(NextPrice(rnd));
  Value& extra = row[col_.b_extra];
  SetString(extra);
  AppendExtra(rnd, 32, config_.avg_bid_bytes, &extra.s);
  // Channel and url (Flink's Nexmark addition), drawn after Beam's fields.
  Value& channel = row[col_.b_channel];
  Value& url = row[col_.b_url];
  SetString(channel);
  SetString(url);
  if (rnd.NextInt(kHotChannelsRatio) > 0) {
    int32_t i = rnd.NextInt(4);
    channel.s.append(kHotChannels[i]);
    url.s.append(hot_urls_[i]);
  } else {
    int32_t k = rnd.NextInt(kChannels);
    channel.s.append("channel-");
    AppendInt(k, &channel.s);
    AppendChannelUrl(k, &url.s);
  }
}

}  // namespace weir::nexmark
