#include <gtest/gtest.h>

#include <random>

#include "weir/key_groups.h"
#include "weir/serde.h"

namespace weir {
namespace {

Schema AllTypes() {
  return Schema({{"b", Type::kBool},
                 {"i", Type::kInt64},
                 {"d", Type::kDouble},
                 {"s", Type::kString},
                 {"y", Type::kBytes},
                 {"t", Type::kTimestamp},
                 {"i2", Type::kInt64},
                 {"s2", Type::kString},
                 {"b2", Type::kBool}});
}

TEST(SerdeTest, RoundTripAllTypesAndNulls) {
  Schema schema = AllTypes();
  Row row(schema.size());
  row[0].SetBool(true);
  row[1].SetInt64(-1234567890123LL);
  row[2].SetDouble(3.25);
  row[3].SetString("héllo, wörld");
  row[4].SetBytes(std::string("\0\x01\xff", 3));
  row[5].SetTimestamp(1763700000000LL);
  row[6].SetNull();
  row[7].SetString("");
  row[8].SetNull();
  ByteBuffer buf;
  SerializeRow(row, schema, buf);
  SerializeRow(row, schema, buf);  // two rows back to back
  const uint8_t* p = buf.data();
  const uint8_t* end = p + buf.size();
  Row out;
  ASSERT_TRUE(DeserializeRow(&p, end, schema, out));
  EXPECT_EQ(out, row);
  ASSERT_TRUE(DeserializeRow(&p, end, schema, out));
  EXPECT_EQ(out, row);
  EXPECT_EQ(p, end);
}

TEST(SerdeTest, MismatchedValueTypeIsWrittenAsNull) {
  Schema schema({{"i", Type::kInt64}});
  Row row(1);
  row[0].SetString("not an int");
  ByteBuffer buf;
  SerializeRow(row, schema, buf);
  const uint8_t* p = buf.data();
  Row out;
  ASSERT_TRUE(DeserializeRow(&p, p + buf.size(), schema, out));
  EXPECT_TRUE(out[0].is_null());
}

TEST(SerdeTest, EveryTruncationIsDetected) {
  Schema schema = AllTypes();
  Row row(schema.size());
  row[0].SetBool(false);
  row[1].SetInt64(7);
  row[2].SetDouble(-0.5);
  row[3].SetString(std::string(300, 'x'));  // a 2-byte varint length
  row[4].SetBytes("ab");
  row[5].SetTimestamp(0);
  row[6].SetInt64(1);
  row[7].SetString("z");
  row[8].SetBool(true);
  ByteBuffer buf;
  SerializeRow(row, schema, buf);
  for (size_t len = 0; len < buf.size(); ++len) {
    const uint8_t* p = buf.data();
    Row out;
    EXPECT_FALSE(DeserializeRow(&p, buf.data() + len, schema, out)) << "length " << len;
  }
}

TEST(SerdeTest, RandomBytesNeverCrash) {
  Schema schema = AllTypes();
  std::mt19937 rng(42);
  std::vector<uint8_t> bytes(64);
  Row out;
  for (int iter = 0; iter < 20000; ++iter) {
    size_t n = rng() % bytes.size();
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(rng());
    const uint8_t* p = bytes.data();
    const uint8_t* end = p + n;
    while (p < end && DeserializeRow(&p, end, schema, out)) {
    }
  }
}

TEST(KeyGroupsTest, RangesPartitionAllKeyGroups) {
  for (int maxp : {1, 7, 128, 1000}) {
    for (int p = 1; p <= std::min(maxp, 33); ++p) {
      int next = 0;
      for (int i = 0; i < p; ++i) {
        KeyGroupRange r = KeyGroupRangeFor(i, maxp, p);
        EXPECT_EQ(r.first, next) << maxp << "/" << p << "/" << i;
        for (int kg = r.first; kg <= r.last; ++kg) {
          ASSERT_EQ(SubtaskForKeyGroup(kg, maxp, p), i) << maxp << "/" << p << " kg " << kg;
        }
        next = r.last + 1;
      }
      EXPECT_EQ(next, maxp);
    }
  }
}

TEST(KeyGroupsTest, HashIsStableAndSpreads) {
  // Stability across processes and releases: fixed expected values.
  EXPECT_EQ(HashValue(Value::Int64(42)), HashValue(Value::Int64(42)));
  EXPECT_NE(HashValue(Value::Int64(42)), HashValue(Value::Int64(43)));
  EXPECT_EQ(HashValue(Value::String("abc")), StableHash("abc"));
  EXPECT_EQ(HashValue(Value::Double(0.0)), HashValue(Value::Double(-0.0)));
  std::vector<int> counts(128);
  for (int i = 0; i < 128000; ++i) ++counts[KeyGroupForHash(HashValue(Value::Int64(i)), 128)];
  for (int c : counts) {
    EXPECT_GT(c, 800);
    EXPECT_LT(c, 1200);
  }
}

}  // namespace
}  // namespace weir
