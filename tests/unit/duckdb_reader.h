// DuckDB as an independent reader of the Parquet files tests write: runs SQL through
// tests/parquet/read_parquet.mjs (@duckdb/node-api, pinned by tests/parquet/package-lock.json,
// installed by deploy/test.sh with npm ci) and returns one JSON object per result row. A test
// fails (not skips) when DuckDB is not installed. Needs WEIR_SOURCE_DIR. Any thread.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace weir::testing {

inline std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

inline std::vector<std::string> DuckDb(const std::string& sql) {
  const std::string dir = std::string(WEIR_SOURCE_DIR) + "/tests/parquet";
  if (!std::filesystem::exists(dir + "/node_modules/@duckdb/node-api")) {
    ADD_FAILURE() << "DuckDB is not installed: npm ci --prefix tests/parquet (deploy/test.sh "
                     "does it)";
    return {};
  }
  const std::string cmd =
      "node " + ShellQuote(dir + "/read_parquet.mjs") + " " + ShellQuote(sql) + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "cannot run " << cmd;
    return {};
  }
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << "DuckDB failed on " << sql << ":\n" << out.substr(0, 4000);
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace weir::testing
