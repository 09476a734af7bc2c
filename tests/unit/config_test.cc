#include <gtest/gtest.h>

#include "weir/config.h"

namespace weir {
namespace {

TEST(ConfigTest, TypedGettersNameTheKeyOnError) {
  auto c = Config::Parse("a: 5\nb: x\nd: 2s\ns: 64kb\nl: [p, q]\nm: {z: 1}\n", "cfg");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c->GetInt("a"), 5);
  EXPECT_EQ(c->GetInt("b").status().message(), "cfg.b: expected an integer, got 'x'");
  EXPECT_EQ(c->GetInt("missing").status().message(), "cfg.missing: required");
  EXPECT_EQ(*c->GetInt("missing", 7), 7);
  EXPECT_EQ(*c->GetDurationMs("d"), 2000);
  EXPECT_EQ(*c->GetBytes("s"), 65536);
  EXPECT_FALSE(c->GetDurationMs("b").ok());
  EXPECT_EQ(c->GetStringList("l")->size(), 2u);
  EXPECT_EQ(*c->GetMap("m")->GetInt("z"), 1);
  EXPECT_EQ(c->GetInt("l").status().message(), "cfg.l: expected a value, got a list");
  EXPECT_EQ(c->CheckKeys({"a", "b"}).message().substr(0, 24), "cfg.d: unknown key (allo");
}

TEST(ConfigTest, BadTextIsAnErrorWithAPosition) {
  auto c = Config::Parse("a: [1, 2\n", "job");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("job: not valid YAML/JSON: line"), std::string::npos);
  EXPECT_FALSE(Config::Parse("[1, 2]", "job").ok());
  EXPECT_TRUE(Config::Parse("", "job").ok());
}

TEST(ConfigTest, ToYamlRoundTrips) {
  auto c = Config::Parse("a: 1\nb: {c: [x, 'y z']}\n", "cfg");
  ASSERT_TRUE(c.ok());
  auto back = Config::Parse(c->ToYaml(), "cfg");
  ASSERT_TRUE(back.ok()) << c->ToYaml();
  EXPECT_EQ(*back->GetMap("b")->GetStringList("c"), (std::vector<std::string>{"x", "y z"}));
}

}  // namespace
}  // namespace weir
