// Why regexp_extract uses RE2: q21's pattern over Nexmark-like urls (1 in 100 with a
// channel_id), group 2 extracted, with RE2 (as weir_expr does) and with std::regex.
// Prints ns per url for both and the ratio (bench/README.md).
#include <re2/re2.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

int main() {
  std::vector<std::string> urls;
  for (int i = 0; i < 1000; ++i) {
    std::string u = "https://www.nexmark.com/abcd/efg/hij/item.htm?query=1";
    if (i % 100 == 0) u += "&channel_id=" + std::to_string(i * 7919);
    urls.push_back(u);
  }
  const char* pattern = "(&|^)channel_id=([^&]*)";
  const RE2 re(pattern);
  const std::regex std_re(pattern);
  constexpr int kRounds = 1000;
  size_t bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < kRounds; ++r) {
    for (const std::string& u : urls) {
      re2::StringPiece g[3];
      if (re.Match(u, 0, u.size(), RE2::UNANCHORED, g, 3)) bytes += g[2].size();
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  for (int r = 0; r < kRounds; ++r) {
    for (const std::string& u : urls) {
      std::smatch m;
      if (std::regex_search(u, m, std_re)) bytes += static_cast<size_t>(m[2].length());
    }
  }
  auto t2 = std::chrono::steady_clock::now();
  const double n = static_cast<double>(kRounds) * static_cast<double>(urls.size());
  const double re2_ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
  const double std_ns = std::chrono::duration<double, std::nano>(t2 - t1).count() / n;
  std::printf(
      "RE2 %.0f ns/url, std::regex %.0f ns/url: std::regex takes %.1fx RE2's time "
      "(%zu bytes extracted)\n",
      re2_ns, std_ns, std_ns / re2_ns, bytes);
  return 0;
}
