// libFuzzer target: every decoder of restored operator state (the lists a _metadata carries
// and the job manager hands to subtasks): datagen splits (versioned and legacy raw bytes) with
// the record counters (RecordCounters::Restore), the Kafka source's offsets (kafka@v1 and the
// legacy kafka_offsets text), and the committing_file sink's pending / writers / partitions /
// event-time lists (versioned and legacy), through the same OperatorListState decoding. The
// input is a proto::VertexRestore (its operator_state lists); its first byte picks the decoder.
// Contract besides sanitizers: accepted Kafka offsets are >= 0 or -2 on partitions >= 0.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#include "committing_file_sink.h"
#include "fuzz_common.h"
#include "kafka_config.h"
#include "weir.pb.h"
#include "weir/builtins.h"
#include "weir/config.h"
#include "weir/operator.h"

namespace {

// The datagen source restores in Open (splits, then counters) without touching anything else.
void Datagen(const weir::RestoredState& restored, int parallelism) {
  static const auto config =
      weir::Config::Parse("{total: 5, fields: [{name: k, expr: \"id\"}]}", "fuzz").value();
  auto src = weir::BuiltinOperators().Find("datagen")->CreateSource(config);
  if (!src.ok()) std::abort();
  weir::OperatorContext ctx;
  ctx.vertex_id = "gen";
  ctx.parallelism = parallelism;
  ctx.subtask = 0;
  ctx.restored = &restored;
  (void)(*src)->Open(ctx);
}

std::string Seed(char which, const weir::proto::VertexRestore& vr) {
  return std::string(1, which) + vr.SerializeAsString();
}

// Fields joined by NUL bytes (the legacy text entries).
std::string Nul(std::initializer_list<const char*> fields) {
  std::string out;
  bool first = true;
  for (const char* f : fields) {
    if (!first) out.push_back('\0');
    first = false;
    out += f;
  }
  return out;
}

weir::proto::NamedList* List(weir::proto::VertexRestore& vr, const std::string& name) {
  auto* l = vr.add_operator_state();
  l->set_name(name);
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  weir::fuzz::Seeds seeds;
  {
    weir::proto::VertexRestore vr;
    weir::proto::DatagenSplit s;
    s.set_next(7);
    s.set_stride(2);
    List(vr, "splits@v1")->add_entries(s.SerializeAsString());
    List(vr, "_counts")->add_entries(Nul({"c1", "read", "12", "emitted", "3"}));
    seeds.push_back({"datagen", Seed(0, vr)});
    weir::proto::VertexRestore legacy;
    int64_t raw[2] = {5, 3};
    List(legacy, "splits")->add_entries(std::string(reinterpret_cast<char*>(raw), 16));
    seeds.push_back({"datagen-legacy", Seed(0, legacy)});
  }
  {
    weir::proto::VertexRestore vr;
    weir::proto::KafkaSourceEntry p, s;
    p.mutable_partition()->set_topic("orders");
    p.mutable_partition()->set_partition(3);
    p.mutable_partition()->set_next_offset(42);
    s.mutable_subtask()->set_parallelism(2);
    s.mutable_subtask()->set_started(true);
    auto* l = List(vr, "kafka@v1");
    l->add_entries(p.SerializeAsString());
    l->add_entries(s.SerializeAsString());
    seeds.push_back({"kafka", Seed(1, vr)});
    weir::proto::VertexRestore legacy;
    auto* ll = List(legacy, "kafka_offsets");
    ll->add_entries(Nul({"p1", "orders", "3", "42"}));
    ll->add_entries(Nul({"s1", "0", "1", "1"}));
    seeds.push_back({"kafka-legacy", Seed(1, legacy)});
  }
  {
    weir::proto::VertexRestore vr;
    weir::proto::CommittingFilePending p;
    p.set_checkpoint(4);
    p.set_staging("part-j1-0-0-4-1.jsonl.pending");
    p.set_final_name("dt=2026-11-30/part-0-4-1.jsonl");
    List(vr, "pending@v1")->add_entries(p.SerializeAsString());
    weir::proto::CommittingFileWriter w;
    w.set_checkpoint(4);
    w.set_job_id("j1");
    w.add_staging_names("part-j1-0-0-4-1.jsonl.pending");
    List(vr, "writers@v1")->add_entries(w.SerializeAsString());
    weir::proto::CommittingFilePartition t;
    t.set_dir("dt=2026-11-30");
    t.set_end(1000);
    List(vr, "partitions@v1")->add_entries(t.SerializeAsString());
    weir::proto::CommittingFileEventTime e;
    e.set_watermark(999);
    List(vr, "event_time@v1")->add_entries(e.SerializeAsString());
    seeds.push_back({"committing-file", Seed(2, vr)});
    weir::proto::VertexRestore legacy;
    List(legacy, "pending")->add_entries(Nul({"p1", "4", "s.pending", "dt=x/f"}));
    List(legacy, "writers")->add_entries(Nul({"w1", "4", "j1", "0", "0", "s.pending"}));
    List(legacy, "partitions")->add_entries(Nul({"t1", "dt=x", "1000"}));
    List(legacy, "event_time")->add_entries(Nul({"e1", "999"}));
    seeds.push_back({"committing-file-legacy", Seed(2, legacy)});
  }
  weir::fuzz::MaybeWriteSeeds(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  weir::proto::VertexRestore vr;
  if (!vr.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  weir::RestoredState restored;
  restored.root = "/nonexistent";
  restored.operator_state.assign(vr.operator_state().begin(), vr.operator_state().end());
  switch (data[0] % 3) {
    case 0:
      Datagen(restored, 1 + (data[0] >> 2) % 4);
      break;
    case 1: {
      auto r = weir::kafka::DecodeOffsetState(&restored);
      if (r.ok()) {
        for (const auto& [tp, next] : r->partitions) {
          if (tp.topic.empty() || tp.partition < 0 || (next < 0 && next != -2)) std::abort();
        }
      }
      break;
    }
    default:
      (void)weir::CheckCommittingFileRestoredState(restored);
      break;
  }
  return 0;
}
