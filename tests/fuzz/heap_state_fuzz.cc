// libFuzzer target: a heap state backend file (keyed-state.bin) as a restore reads it
// (ParseHeapFile, then each key's key group as ForEachEntryInHandle computes it). Half the
// inputs are taken as whole files; the other half as a body that gets a valid header, trailer
// and checksum, so the fuzzer reaches the entry decoder behind the CRC. Contract besides
// sanitizers: every entry handed out lies inside the file, and a file that parses has exactly
// the entries its trailer counts.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crc32c.h"
#include "fuzz_common.h"
#include "heap_format.h"
#include "restore.h"

namespace {

std::string WithFrame(std::string_view body, uint64_t count) {
  std::string file = weir::state::HeapFileHeader();
  file.append(body);
  file += weir::state::HeapFileTrailer(weir::state::Crc32c(file.data(), file.size()), count);
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  std::string body;
  weir::state::AppendHeapEntry(std::string("\x00\x05k1", 4), "v1", &body);
  weir::state::AppendHeapEntry(std::string("\x7f\xffkey", 5), std::string(300, 'x'), &body);
  weir::fuzz::MaybeWriteSeeds({{"file", WithFrame(body, 2)},
                               {"body", std::string(1, '\x01') + std::string(1, 2) + body},
                               {"empty", WithFrame("", 0)}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string file;
  if (size >= 2 && (data[0] & 1)) {
    file = WithFrame(in.substr(2), data[1]);  // a body with a valid frame; count from byte 1
  } else {
    file.assign(in);
  }
  uint64_t seen = 0;
  const weir::KeyGroupRange range{3, 200};
  const weir::Status st = weir::state::ParseHeapFile(
      file, "fuzz", [&](std::string_view key, std::string_view value) {
        if (key.data() < file.data() || key.data() + key.size() > file.data() + file.size() ||
            value.data() < file.data() ||
            value.data() + value.size() > file.data() + file.size() || key.size() < 2) {
          std::abort();
        }
        const int kg = weir::state::KeyGroupOf(key);
        if (kg < 0 || kg > 0xffff) std::abort();
        (void)range.Contains(kg);
        ++seen;
        return weir::Status::Ok();
      });
  if (st.ok() && size >= 2 && (data[0] & 1) && seen != data[1]) std::abort();
  return 0;
}
