// committing_file: the exactly-once file sink, committed by checkpoints (two-phase commit:
// pre-commit at the snapshot, commit when the checkpoint is complete), with Hive-style dynamic
// partitions, partition commit by event time, JSON lines, CSV or Parquet, compression, and
// rolling.
//
// config:
//   path (required); prefix (default "part"); suffix (default ".jsonl" / ".csv" (plus ".gz")
//     / ".parquet")
//   format: json | csv | parquet; csv: {delimiter: ",", header: false}
//   compression: json, csv: none (default) | gzip; parquet: snappy (default) | zstd | none
//   parquet: {row_group_size: 64mb, page_size: 1mb, dictionary: true, buffer_memory: 256mb}
//     (parquet_writer.h; a Parquet file is written row group by row group and closed with its
//     footer at every roll; rows it cannot hold (a string that is not UTF-8) are dirty)
//   partition: a template, e.g. "dt={ts:%Y-%m-%d}/hour={ts:%H}/app={app}" (partition_template.h)
//   rolling: {max_size: 128mb, max_open_time: 10m, inactivity: 1m}; files always roll at
//     every checkpoint (exactly-once needs it)
//   max_open_files: 1000 per subtask (the least recently written file is closed beyond it)
//   partition_commit (time templates; on by default there):
//     {enabled: true, delay: 0, success_file: _SUCCESS, empty_partitions: false,
//      empty_partitions_limit: 10000 (back-filled, and marked per commit)}
//   late_dir: _late; dirty_dir: _dirty (relative to path; '_' hides them from Hive)
//
// Files and their life:
//   <path>/.staging/<base>.inprogress  being written (rows since the last snapshot)
//   <path>/.staging/<base>.pending     closed and fsynced; waits for checkpoint n to complete
//   <path>/<partition>/<base>          committed: complete, fsynced, final
// with
//   <base> = <prefix>-<job id>-<vertex>-<subtask>-<attempt>-<next checkpoint>-<seq><suffix>
//
// Every part is needed: job id, vertex, subtask and attempt name the writer, so that after any
// crash the restore logic knows whose leftover a staging file is (and so that two writers can
// never pick the same name, whatever the parallelism after a rescale); <next checkpoint> is the
// first checkpoint that can cover the file, for people reading the directory; <seq> counts the
// writer's files, so names are never reused and never random. Staging is flat (one directory
// for all partitions); the pending entry records the final relative path. Readers of <path>
// only ever see whole files: a file appears there by one rename, after its data was fsynced.
//
// Partition commit. At each barrier the sink remembers its input watermark; once every file
// of checkpoint m is committed, the watermark it had at barrier m is its "commit watermark"
// (every on-time row at or before it is in committed files). It reports that in each
// acknowledgement; the job manager hands the minimum over all subtasks (W) back with the
// completion, and each subtask writes the success file into every partition it wrote whose end
// - 1 + delay <= W: every subtask's rows of it are committed by then. The file is created with
// O_EXCL, so it is written once even when several subtasks (or a restarted one) get there. A
// row whose partition could already be committed (end - 1 + delay <= the input watermark) is
// late: it goes to <late_dir>/<partition>/ instead, counted. Partition values are escaped as
// Hive does (partition_template.h); rows whose partition cannot be written (a null field, a
// directory name or path too long after escaping, a time out of range) go to <dirty_dir>/ as
// {"reason": ..., "row": ...}, counted, decided before the row is staged, so no row can make a
// commit fail. Both side outputs are committed exactly once like the data.
//
// Operator state, per subtask and checkpoint n (weir/operator_state.h; the entries are the
// CommittingFile* messages of proto/weir.proto):
//   "pending@v1" (SPLIT): one entry per staged file not yet committed: (checkpoint it belongs
//     to, staging name, final relative path). Whoever restores an entry commits it.
//   "writers@v1" (UNION): one entry per subtask: (n, job id, attempt, subtask, the staging
//     names of its pending files). After a restore every new subtask sees all of them: it
//     learns n, the job ids whose leftovers it may delete, and every staging name the
//     checkpoint still needs (see Open for why deletion needs the whole set and not just this
//     subtask's share).
//   "partitions@v1" (SPLIT): time partitions written and not yet marked successful (dir, end).
//   "event_time@v1" (UNION): per subtask, its input watermark at barrier n.
// State from before versioned lists (the same lists unversioned, as tagged NUL-joined text) is
// still read: see ReadLegacyLists.
//
// Limits: committed output is only exact if the job restores from the latest completed
// checkpoint (restoring an older one replays records whose files are already committed), and
// Finish commits everything at the end of a bounded input without a final checkpoint (a job
// that fails after one sink subtask finished and is then restored repeats that subtask's tail;
// a bounded job writes no success files for the partitions of its last checkpoint interval).
// Time partitions are in UTC.
#include "committing_file_sink.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parquet_writer.h"
#include "weir/clock.h"
#include "weir/connectors.h"
#include "weir/logging.h"
#include "weir/operator_state.h"
#include "weir/partition_template.h"
#include "weir/paths.h"
#include "weir/record_counters.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

const ModuleLog Log("connectors");

constexpr std::string_view kInProgress = ".inprogress";
constexpr std::string_view kPending = ".pending";

// ---------------------------------------------------------------- state entries
// The four lists, as typed versioned operator state (weir/operator_state.h; the messages and
// what their fields mean are in proto/weir.proto).
OperatorListState<proto::CommittingFilePending> PendingState() {
  return {"pending", 1, proto::NamedList::SPLIT};
}
OperatorListState<proto::CommittingFileWriter> WritersState() {
  return {"writers", 1, proto::NamedList::UNION};
}
OperatorListState<proto::CommittingFilePartition> PartitionsState() {
  return {"partitions", 1, proto::NamedList::SPLIT};
}
OperatorListState<proto::CommittingFileEventTime> EventTimeState() {
  return {"event_time", 1, proto::NamedList::UNION};
}

// A name from restored state is used in renames and deletions: it must stay inside its
// directory whatever a corrupt snapshot holds.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

// What a file holds: rows for their partition, late rows, or dirty rows.
enum class FileKind { kData, kLate, kDirty };

struct PendingFile {
  int64_t checkpoint = 0;  // the checkpoint whose completion commits it
  std::string staging;     // name in <path>/.staging
  std::string final_name;  // path relative to <path> (partition directories, file name)
  // Not in the state (a restored file is committed in Open or the restore fails): for the
  // reconciliation counts of files whose commit failed.
  FileKind kind = FileKind::kData;
  int64_t rows = 0;
  int64_t bytes = 0;  // for the metrics (0 for a restored file)
};

struct WriterEntry {
  int64_t checkpoint = 0;
  std::string job_id;
  int64_t attempt = 0;
  int64_t subtask = 0;
  std::vector<std::string> staging_names;  // its pending files
};

// What a restore brings, whichever format it came in.
struct RestoredLists {
  std::vector<PendingFile> pending;  // this subtask's share
  std::vector<WriterEntry> writers;  // every old subtask's
  bool have_writers = false;
  std::map<std::string, int64_t> partitions;  // dir -> end
  std::optional<int64_t> watermark;           // the minimum over the old subtasks
};

Status CorruptEntry(std::string_view list) {
  return Status::DataLoss("committing_file: corrupt '" + std::string(list) +
                          "' entry in restored state");
}

Status AddPending(PendingFile p, RestoredLists* out) {
  if (!IsPlainFileName(p.staging) || !IsSafeRelativePath(p.final_name)) {
    return CorruptEntry("pending");
  }
  out->pending.push_back(std::move(p));
  return Status::Ok();
}

Status AddWriter(WriterEntry w, RestoredLists* out) {
  if (w.job_id.empty()) return CorruptEntry("writers");
  for (const std::string& n : w.staging_names) {
    if (!IsPlainFileName(n)) return CorruptEntry("writers");
  }
  out->writers.push_back(std::move(w));
  return Status::Ok();
}

Status AddPartition(std::string dir, int64_t end, RestoredLists* out) {
  if (!IsSafeRelativePath(dir)) return CorruptEntry("partitions");
  out->partitions[std::move(dir)] = end;
  return Status::Ok();
}

void AddWatermark(int64_t wm, RestoredLists* out) {
  out->watermark = std::min(out->watermark.value_or(wm), wm);
}

// Reads the versioned lists; `*found` says whether the state held any of them.
Status ReadVersionedLists(const RestoredState* restored, RestoredLists* out, bool* found) {
  const std::string owner = "committing_file";
  WEIR_ASSIGN_OR_RETURN(auto pending, PendingState().Decode(restored, owner));
  WEIR_ASSIGN_OR_RETURN(auto writers, WritersState().Decode(restored, owner));
  WEIR_ASSIGN_OR_RETURN(auto parts, PartitionsState().Decode(restored, owner));
  WEIR_ASSIGN_OR_RETURN(auto event_time, EventTimeState().Decode(restored, owner));
  *found = pending || writers || parts || event_time;
  for (const auto& e : pending.value_or(std::vector<proto::CommittingFilePending>())) {
    WEIR_RETURN_IF_ERROR(AddPending({e.checkpoint(), e.staging(), e.final_name()}, out));
  }
  out->have_writers = writers.has_value();
  for (const auto& e : writers.value_or(std::vector<proto::CommittingFileWriter>())) {
    WriterEntry w{e.checkpoint(), e.job_id(), e.attempt(), e.subtask(), {}};
    w.staging_names.assign(e.staging_names().begin(), e.staging_names().end());
    WEIR_RETURN_IF_ERROR(AddWriter(std::move(w), out));
  }
  for (const auto& e : parts.value_or(std::vector<proto::CommittingFilePartition>())) {
    WEIR_RETURN_IF_ERROR(AddPartition(e.dir(), e.end(), out));
  }
  for (const auto& e : event_time.value_or(std::vector<proto::CommittingFileEventTime>())) {
    AddWatermark(e.watermark(), out);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- legacy state
// Savepoints and checkpoints made before versioned state (up to 2026-11-30) hold the same four
// lists unversioned ("pending", "writers", "partitions", "event_time"), each entry text fields
// joined by NUL bytes and led by a tag: "p1" (checkpoint, staging, final), "w1" (checkpoint,
// job id, attempt, subtask, staging names...), "t1" (dir, end), "e1" (watermark). Read only.
std::vector<std::string_view> SplitFields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find('\0', start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

Status ReadLegacyEntry(std::string_view list, std::string_view e, RestoredLists* out) {
  const std::vector<std::string_view> f = SplitFields(e);
  int64_t n[3] = {0, 0, 0};
  if (list == "pending") {
    if (f.size() != 4 || f[0] != "p1" || !TryParseInt64(f[1], &n[0]).ok()) {
      return CorruptEntry(list);
    }
    return AddPending({n[0], std::string(f[2]), std::string(f[3])}, out);
  }
  if (list == "writers") {
    if (f.size() < 5 || f[0] != "w1" || !TryParseInt64(f[1], &n[0]).ok() ||
        !TryParseInt64(f[3], &n[1]).ok() || !TryParseInt64(f[4], &n[2]).ok()) {
      return CorruptEntry(list);
    }
    WriterEntry w{n[0], std::string(f[2]), n[1], n[2], {}};
    w.staging_names.assign(f.begin() + 5, f.end());
    return AddWriter(std::move(w), out);
  }
  if (list == "partitions") {
    if (f.size() != 3 || f[0] != "t1" || !TryParseInt64(f[2], &n[0]).ok()) {
      return CorruptEntry(list);
    }
    return AddPartition(std::string(f[1]), n[0], out);
  }
  // "event_time"
  if (f.size() != 2 || f[0] != "e1" || !TryParseInt64(f[1], &n[0]).ok()) return CorruptEntry(list);
  AddWatermark(n[0], out);
  return Status::Ok();
}

Status ReadLegacyLists(const RestoredState& restored, RestoredLists* out) {
  for (const proto::NamedList& list : restored.operator_state) {
    const std::string& name = list.name();
    if (name != "pending" && name != "writers" && name != "partitions" && name != "event_time") {
      continue;
    }
    if (name == "writers") out->have_writers = true;
    for (const std::string& e : list.entries()) {
      WEIR_RETURN_IF_ERROR(ReadLegacyEntry(name, e, out));
    }
  }
  return Status::Ok();
}

// The sink's lists in `restored` (nothing when there is none: a fresh start), versioned or in
// the legacy format.
Result<RestoredLists> ReadRestoredLists(const RestoredState* restored) {
  RestoredLists out;
  if (restored == nullptr) return out;
  bool found = false;
  WEIR_RETURN_IF_ERROR(ReadVersionedLists(restored, &out, &found));
  if (!found) WEIR_RETURN_IF_ERROR(ReadLegacyLists(*restored, &out));
  return out;
}

// ---------------------------------------------------------------- file names
// A staging file name split into its parts. The numbers are parsed from the right, so a
// vertex id or prefix holding '-' is no problem; `owner` is "<prefix>-<job id>-<vertex>" and is
// compared whole against the owners we know.
struct StagingName {
  std::string owner;
  int64_t subtask = 0, attempt = 0, next_checkpoint = 0, seq = 0;
};

bool ParseStagingName(std::string_view name, std::string_view suffix, StagingName* out) {
  if (name.ends_with(kInProgress)) {
    name.remove_suffix(kInProgress.size());
  } else if (name.ends_with(kPending)) {
    name.remove_suffix(kPending.size());
  } else {
    return false;
  }
  if (!name.ends_with(suffix)) return false;
  name.remove_suffix(suffix.size());
  int64_t* numbers[] = {&out->seq, &out->next_checkpoint, &out->attempt, &out->subtask};
  for (int64_t* v : numbers) {
    const size_t dash = name.rfind('-');
    if (dash == std::string_view::npos) return false;
    if (!TryParseInt64(name.substr(dash + 1), v).ok() || *v < 0) return false;
    name = name.substr(0, dash);
  }
  out->owner = std::string(name);
  return true;
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot open directory " + dir + ": " + strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IoError("fsync of directory " + dir + " failed: " + strerror(err));
  return Status::Ok();
}

// Creates <root>/<rel> and any missing parents, making each new directory entry durable (a
// committed file must not vanish with its directory after a crash).
Status EnsureDir(const std::string& root, std::string_view rel) {
  if (rel.empty()) return Status::Ok();
  std::string path = root;
  size_t start = 0;
  while (start < rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    const std::string parent = path;
    path += "/";
    path.append(rel.substr(start, end - start));
    if (::mkdir(path.c_str(), 0755) == 0) {
      WEIR_RETURN_IF_ERROR(SyncDir(parent));
    } else if (errno != EEXIST) {
      return Status::IoError("cannot create directory " + path + ": " + strerror(errno));
    }
    start = end + 1;
  }
  return Status::Ok();
}

// Test hook: WEIR_CRASH_AT=<point>[:<n>] kills the process (SIGKILL, as kill -9 would) the n-th
// time (default: first) any sink subtask of the process reaches that point. Points:
// after_precommit, before_commit, between_renames. Compiled in only with WEIR_CRASH_POINTS (the
// default build); with the variable unset it costs a branch.
void CrashPoint(const char* point) {
#ifdef WEIR_CRASH_POINTS
  static const std::pair<std::string, int64_t> target = [] {
    const char* env = std::getenv("WEIR_CRASH_AT");
    if (env == nullptr) return std::pair<std::string, int64_t>("", 0);
    std::string v(env);
    int64_t n = 1;
    const size_t colon = v.find(':');
    if (colon != std::string::npos) {
      if (!TryParseInt64(std::string_view(v).substr(colon + 1), &n).ok() || n < 1) n = 1;
      v.resize(colon);
    }
    return std::pair<std::string, int64_t>(v, n);
  }();
  static std::atomic<int64_t> hits{0};
  if (target.first.empty() || target.first != point) return;
  if (hits.fetch_add(1) + 1 < target.second) return;
  Log()->critical("crash point '{}' reached (WEIR_CRASH_AT): killing this process", point);
  Log()->flush();
  ::raise(SIGKILL);
#else
  (void)point;
#endif
}

void AppendCsvField(std::string_view s, char delim, std::string* out) {
  const bool quote = s.find_first_of(std::string{delim, '"', '\n', '\r'}) != std::string_view::npos;
  if (!quote) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendCsv(const Row& row, const Schema& schema, char delim, std::string* out) {
  std::string scratch;
  for (size_t i = 0; i < schema.size(); ++i) {
    if (i > 0) out->push_back(delim);
    const Value& v = row[i];
    switch (v.type) {
      case Type::kNull:
        break;
      case Type::kBool:
        out->append(v.b ? "true" : "false");
        break;
      case Type::kInt64: {
        char buf[24];
        auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v.i);
        out->append(buf, p);
        break;
      }
      case Type::kDouble: {
        char buf[32];
        auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v.d);
        out->append(buf, p);
        break;
      }
      case Type::kString:
      case Type::kBytes:
        AppendCsvField(v.s, delim, out);
        break;
      case Type::kTimestamp:
        AppendTimestamp(v.i, out);
        break;
    }
  }
}

// ---------------------------------------------------------------- config
enum class Format { kJson, kCsv, kParquet };

struct FileSinkConfig {
  std::string path;
  std::string prefix;
  std::string suffix;
  Format format = Format::kJson;
  char csv_delimiter = ',';
  bool csv_header = false;
  bool gzip = false;
  ParquetOptions parquet;
  int64_t row_group_size = 64 << 20;  // plain bytes buffered per file before a row group
  int64_t buffer_memory = 256 << 20;  // plain bytes buffered by all Parquet files together
  std::string partition;              // template text
  int64_t max_size = 0;               // 0: no limit
  int64_t max_open_ms = 0;
  int64_t inactivity_ms = 0;
  int64_t max_open_files = 1000;
  bool commit = false;  // partition commit by event time
  int64_t commit_delay_ms = 0;
  std::string success_file = "_SUCCESS";
  bool commit_empty = false;
  int64_t empty_limit = 10000;  // empty partitions created per commit, and back-filled
  std::string late_dir = "_late";
  std::string dirty_dir = "_dirty";
};

bool IsPlainDirName(const std::string& s) {
  return IsPlainFileName(s) && IsSafeRelativePath(s);
}

Result<FileSinkConfig> PlanFileSink(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"path", "prefix", "suffix", "format", "csv", "compression",
                                         "parquet", "partition", "rolling", "max_open_files",
                                         "partition_commit", "late_dir", "dirty_dir"}));
  FileSinkConfig c;
  WEIR_ASSIGN_OR_RETURN(c.path, config.GetString("path"));
  if (c.path.empty()) return Status::InvalidArgument(config.path() + ".path: must not be empty");
  WEIR_ASSIGN_OR_RETURN(c.prefix, config.GetString("prefix", std::string("part")));
  WEIR_ASSIGN_OR_RETURN(std::string format, config.GetString("format", std::string("json")));
  if (format == "json") {
    c.format = Format::kJson;
  } else if (format == "csv") {
    c.format = Format::kCsv;
  } else if (format == "parquet") {
    c.format = Format::kParquet;
    WEIR_RETURN_IF_ERROR(CheckParquetSchema(input, config.path() + ".format"));
  } else {
    return Status::InvalidArgument(config.path() + ".format: expected json, csv or parquet, got '" +
                                   format + "'");
  }
  WEIR_ASSIGN_OR_RETURN(Config csv, config.GetMap("csv"));
  WEIR_RETURN_IF_ERROR(csv.CheckKeys({"delimiter", "header"}));
  WEIR_ASSIGN_OR_RETURN(std::string delim, csv.GetString("delimiter", std::string(",")));
  if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r') {
    return Status::InvalidArgument(csv.path() +
                                   ".delimiter: must be one character other than "
                                   "a quote or a line break");
  }
  c.csv_delimiter = delim[0];
  WEIR_ASSIGN_OR_RETURN(c.csv_header, csv.GetBool("header", false));
  const bool parquet = c.format == Format::kParquet;
  WEIR_ASSIGN_OR_RETURN(std::string comp,
                        config.GetString("compression", std::string(parquet ? "snappy" : "none")));
  if (parquet) {
    if (comp == "snappy") {
      c.parquet.compression = ParquetCompression::kSnappy;
    } else if (comp == "zstd") {
      c.parquet.compression = ParquetCompression::kZstd;
    } else if (comp == "none") {
      c.parquet.compression = ParquetCompression::kNone;
    } else {
      return Status::InvalidArgument(config.path() +
                                     ".compression: format parquet takes snappy, "
                                     "zstd or none, got '" +
                                     comp + "'");
    }
  } else if (comp == "gzip") {
    c.gzip = true;
  } else if (comp != "none") {
    return Status::InvalidArgument(config.path() + ".compression: format " + format +
                                   " takes none or gzip, got '" + comp + "'");
  }
  WEIR_ASSIGN_OR_RETURN(Config pq, config.GetMap("parquet"));
  WEIR_RETURN_IF_ERROR(
      pq.CheckKeys({"row_group_size", "page_size", "dictionary", "buffer_memory"}));
  if (!parquet && config.Has("parquet")) {
    return Status::InvalidArgument(pq.path() + ": only for format parquet");
  }
  WEIR_ASSIGN_OR_RETURN(c.row_group_size, pq.GetBytes("row_group_size", 64 << 20));
  WEIR_ASSIGN_OR_RETURN(c.parquet.page_size, pq.GetBytes("page_size", 1 << 20));
  WEIR_ASSIGN_OR_RETURN(c.parquet.dictionary, pq.GetBool("dictionary", true));
  WEIR_ASSIGN_OR_RETURN(c.buffer_memory, pq.GetBytes("buffer_memory", 256 << 20));
  // Row groups stay far below the writer's 2 GiB per column chunk.
  if (c.row_group_size < (1 << 20) || c.row_group_size > (int64_t{1} << 30)) {
    return Status::InvalidArgument(pq.path() + ".row_group_size: must be 1mb..1gb");
  }
  if (c.parquet.page_size < (4 << 10) || c.parquet.page_size > c.row_group_size) {
    return Status::InvalidArgument(pq.path() + ".page_size: must be 4kb..row_group_size");
  }
  if (c.buffer_memory < c.row_group_size || c.buffer_memory > (int64_t{16} << 30)) {
    return Status::InvalidArgument(pq.path() + ".buffer_memory: must be row_group_size..16gb");
  }
  const std::string def_suffix =
      parquet ? std::string(".parquet")
              : std::string(c.format == Format::kJson ? ".jsonl" : ".csv") + (c.gzip ? ".gz" : "");
  WEIR_ASSIGN_OR_RETURN(c.suffix, config.GetString("suffix", def_suffix));
  // Both become part of file names, which must stay plain names (IsPlainFileName).
  if (c.prefix.empty() || c.prefix.find_first_of(std::string("/\0", 2)) != std::string::npos) {
    return Status::InvalidArgument(config.path() +
                                   ".prefix: must be non-empty, without '/' or NUL");
  }
  if (c.suffix.find_first_of(std::string("/\0", 2)) != std::string::npos) {
    return Status::InvalidArgument(config.path() + ".suffix: must not contain '/' or NUL");
  }
  WEIR_ASSIGN_OR_RETURN(c.partition, config.GetString("partition", std::string()));
  WEIR_ASSIGN_OR_RETURN(PartitionTemplate tmpl,
                        PartitionTemplate::Parse(c.partition, input, config.path() + ".partition"));
  WEIR_ASSIGN_OR_RETURN(Config rolling, config.GetMap("rolling"));
  WEIR_RETURN_IF_ERROR(rolling.CheckKeys({"max_size", "max_open_time", "inactivity"}));
  WEIR_ASSIGN_OR_RETURN(c.max_size, rolling.GetBytes("max_size", 0));
  WEIR_ASSIGN_OR_RETURN(c.max_open_ms, rolling.GetDurationMs("max_open_time", 0));
  WEIR_ASSIGN_OR_RETURN(c.inactivity_ms, rolling.GetDurationMs("inactivity", 0));
  if (c.max_size < 0 || c.max_open_ms < 0 || c.inactivity_ms < 0) {
    return Status::InvalidArgument(rolling.path() + ": limits must not be negative");
  }
  WEIR_ASSIGN_OR_RETURN(c.max_open_files, config.GetInt("max_open_files", 1000));
  if (c.max_open_files < 1 || c.max_open_files > 100000) {
    return Status::InvalidArgument(config.path() + ".max_open_files: must be 1..100000");
  }
  WEIR_ASSIGN_OR_RETURN(Config pc, config.GetMap("partition_commit"));
  WEIR_RETURN_IF_ERROR(pc.CheckKeys(
      {"enabled", "delay", "success_file", "empty_partitions", "empty_partitions_limit"}));
  WEIR_ASSIGN_OR_RETURN(c.commit, pc.GetBool("enabled", tmpl.has_time()));
  WEIR_ASSIGN_OR_RETURN(c.commit_delay_ms, pc.GetDurationMs("delay", 0));
  WEIR_ASSIGN_OR_RETURN(c.success_file, pc.GetString("success_file", std::string("_SUCCESS")));
  WEIR_ASSIGN_OR_RETURN(c.commit_empty, pc.GetBool("empty_partitions", false));
  WEIR_ASSIGN_OR_RETURN(c.empty_limit, pc.GetInt("empty_partitions_limit", 10000));
  if (c.empty_limit < 1 || c.empty_limit > 1000000) {
    return Status::InvalidArgument(pc.path() + ".empty_partitions_limit: must be 1..1000000, got " +
                                   std::to_string(c.empty_limit));
  }
  if (c.commit) {
    if (!tmpl.has_time()) {
      return Status::InvalidArgument(pc.path() +
                                     ".enabled: partition commit needs a time "
                                     "placeholder in config.partition, e.g. "
                                     "{event_time:%Y-%m-%d}");
    }
    if (tmpl.granularity_ms() == 0) {
      return Status::InvalidArgument(
          pc.path() +
          ": partitions coarser than a day (months, years) cannot be committed by "
          "watermark; add a finer unit or set enabled: false");
    }
    if (c.commit_delay_ms < 0) return Status::InvalidArgument(pc.path() + ".delay: must be >= 0");
    if (!IsPlainFileName(c.success_file)) {
      return Status::InvalidArgument(pc.path() + ".success_file: must be a plain file name");
    }
    if (c.commit_empty && !tmpl.time_only()) {
      return Status::InvalidArgument(pc.path() +
                                     ".empty_partitions: only for templates whose "
                                     "placeholders are all times (others cannot be "
                                     "enumerated)");
    }
  }
  WEIR_ASSIGN_OR_RETURN(c.late_dir, config.GetString("late_dir", std::string("_late")));
  WEIR_ASSIGN_OR_RETURN(c.dirty_dir, config.GetString("dirty_dir", std::string("_dirty")));
  for (const auto& [key, v] : {std::pair<const char*, const std::string*>{"late_dir", &c.late_dir},
                               {"dirty_dir", &c.dirty_dir}}) {
    if (!IsPlainDirName(*v) || (*v)[0] == '.') {
      return Status::InvalidArgument(config.path() + "." + key +
                                     ": must be a plain directory name inside path (not "
                                     "starting with '.'), got '" +
                                     *v + "'");
    }
  }
  return c;
}

// ---------------------------------------------------------------- the sink
class CommittingFileSink : public Operator {
 public:
  CommittingFileSink(Schema schema, FileSinkConfig config, PartitionTemplate tmpl)
      : schema_(std::move(schema)),
        cfg_(std::move(config)),
        dir_(cfg_.path),
        staging_dir_(dir_ + "/.staging"),
        tmpl_(std::move(tmpl)) {}

  ~CommittingFileSink() override { CloseAll(); }

  Status Open(const OperatorContext& ctx) override {
    job_id_ = ctx.job_id;
    vertex_ = ctx.vertex_id;
    subtask_ = ctx.subtask;
    attempt_ = ctx.attempt;
    log_prefix_ = ctx.log_prefix;
    std::error_code ec;
    fs::create_directories(staging_dir_, ec);
    if (ec) return Status::IoError("cannot create directory " + staging_dir_ + ": " + ec.message());
    // The staging directory itself must survive a crash, or the pending files in it would not.
    WEIR_RETURN_IF_ERROR(SyncDir(dir_));

    WEIR_ASSIGN_OR_RETURN(RestoredLists lists, ReadRestoredLists(ctx.restored));
    std::set<std::string> needed;  // every staging name the restored checkpoint names
    std::set<std::string> jobs;    // whose leftovers may be deleted
    jobs.insert(job_id_);
    int64_t restored_id = -1;
    for (const PendingFile& p : lists.pending) needed.insert(p.staging);
    for (const WriterEntry& w : lists.writers) {
      restored_id = std::max(restored_id, w.checkpoint);
      jobs.insert(w.job_id);
      needed.insert(w.staging_names.begin(), w.staging_names.end());
    }
    open_partitions_ = std::move(lists.partitions);
    if (lists.watermark) {
      // Every subtask's files up to the restored checkpoint are committed once all new subtasks
      // have opened; a partition marked before the crash ended at or before this watermark, so
      // replayed rows of it stay late.
      committed_wm_ = *lists.watermark;
      late_floor_ = *lists.watermark;
    }

    // First the commits: the restored checkpoint is complete (it is what we restore from), so
    // its pending files are committed output, whether or not the old job got to rename them.
    pending_ = std::move(lists.pending);
    WEIR_RETURN_IF_ERROR(CommitPending(std::numeric_limits<int64_t>::max()));
    if (!lost_.ok()) return lost_;

    if (ctx.restored && !lists.have_writers) {
      // Not state this sink wrote: we cannot know which staging files the checkpoint still
      // needs for other subtasks, so nothing is deleted.
      Log()->warn("{} committing_file: restored state has no 'writers' list; leftovers are kept",
                  log_prefix_);
    } else {
      WEIR_RETURN_IF_ERROR(DeleteLeftovers(jobs, needed, restored_id));
    }
    // Checkpoint ids continue after the restored one.
    next_checkpoint_ = restored_id >= 0 ? restored_id + 1 : 1;
    WEIR_RETURN_IF_ERROR(counters_.Restore(ctx.restored));
    // Rows the restored checkpoint counted as uncommitted (their commit had failed) are in
    // files it names, and those were all committed above (by this subtask or another).
    for (int k = 0; k < 3; ++k) {
      const int64_t u = counters_.Get(kUncommittedNames[k]);
      counters_.Add(kCountNames[k], u);
      counters_.Add(kUncommittedNames[k], -u);
    }
    return Status::Ok();
  }

  Status Process(RowBatch& batch, Output&) override {
    if (!io_error_.ok()) return io_error_;
    if (batch.empty()) return Status::Ok();
    const int64_t now = NowMs();
    if (tmpl_.empty()) {
      // One directory: every row goes to the same file.
      WEIR_ASSIGN_OR_RETURN(Writer * w, GetWriter(std::string(), Kind::kData, 0, now));
      unwritable_.clear();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!Writable(batch[i])) {
          unwritable_.push_back(i);
          continue;
        }
        AppendRow(w, batch[i]);
      }
      const int64_t n = static_cast<int64_t>(batch.size() - unwritable_.size());
      w->rows += n;
      rows_written_ += n;
      WEIR_RETURN_IF_ERROR(AfterAppend(w, now));
      for (size_t i : unwritable_) {
        Writable(batch[i]);  // the reason again
        WEIR_RETURN_IF_ERROR(WriteDirty(batch[i], reason_, now));
      }
      return Status::Ok();
    }
    const int64_t late_wm = std::max(current_wm_, late_floor_);
    for (size_t i = 0; i < batch.size(); ++i) {
      const Row& row = batch[i];
      int64_t start = 0;
      if (!tmpl_.Render(row, &scratch_dir_, &start, &reason_) || !Writable(row)) {
        WEIR_RETURN_IF_ERROR(WriteDirty(row, reason_, now));
        continue;
      }
      Kind kind = Kind::kData;
      int64_t end = 0;
      if (cfg_.commit) {
        end = start + tmpl_.granularity_ms();  // Render checked that it is representable
        // Could this partition be committed already? Then the row must not go into it.
        if (PartitionComplete(end, cfg_.commit_delay_ms, late_wm)) {
          kind = Kind::kLate;
          scratch_dir_.insert(0, cfg_.late_dir + "/");
        } else if (cfg_.commit_empty && start < min_start_seen_) {
          // On-time rows only: a late row must not move the empty partitions' start back.
          min_start_seen_ = start;
        }
      }
      Writer* w = last_;
      if (w == nullptr || w->dir != scratch_dir_) {
        WEIR_ASSIGN_OR_RETURN(w, GetWriter(scratch_dir_, kind, end, now));
        last_ = w;
      }
      AppendRow(w, row);
      ++w->rows;
      if (kind == Kind::kLate) {
        ++late_rows_;
      } else {
        ++rows_written_;
      }
      WEIR_RETURN_IF_ERROR(AfterAppend(w, now));
    }
    return Status::Ok();
  }

  Status OnWatermark(int64_t watermark, Output&) override {
    current_wm_ = std::max(current_wm_, watermark);
    return Status::Ok();
  }

  // Rolls files by age and inactivity (each becomes pending at the next barrier), and reports
  // side-output counts now and then.
  Status OnProcessingTime(int64_t now_ms, Output&) override {
    if (now_ms - last_roll_check_ms_ < 100) return Status::Ok();
    last_roll_check_ms_ = now_ms;
    if (cfg_.max_open_ms > 0 || cfg_.inactivity_ms > 0) {
      std::vector<Writer*> roll;
      for (auto& [dir, w] : writers_) {
        if ((cfg_.max_open_ms > 0 && now_ms - w->opened_ms >= cfg_.max_open_ms) ||
            (cfg_.inactivity_ms > 0 && now_ms - w->last_write_ms >= cfg_.inactivity_ms)) {
          roll.push_back(w.get());
        }
      }
      for (Writer* w : roll) WEIR_RETURN_IF_ERROR(Seal(w));
    }
    if (now_ms - last_report_ms_ >= 10000) {
      last_report_ms_ = now_ms;
      ReportCounts();
    }
    return Status::Ok();
  }

  // Pre-commit: the rows since the last snapshot become pending files of checkpoint n. An
  // error declines the checkpoint.
  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    next_checkpoint_ = std::max(next_checkpoint_, checkpoint_id + 1);
    if (!io_error_.ok()) return io_error_;
    if (!lost_.ok()) {
      // Every later checkpoint is declined: a completed checkpoint's output is gone, so no
      // later one may claim exactly-once output.
      Log()->error("{} committing_file: declining checkpoint {}: {}", log_prefix_, checkpoint_id,
                   lost_.ToString());
      return lost_;
    }
    if (!commit_error_.ok()) {
      // A commit failed (its files stay pending and are retried at the next completion): this
      // checkpoint is declined so that the failure is seen, once.
      Status st = commit_error_;
      commit_error_ = Status::Ok();
      return st;
    }
    WEIR_RETURN_IF_ERROR(PreCommit(checkpoint_id));

    std::vector<proto::CommittingFilePending> pending(pending_.size());
    proto::CommittingFileWriter me;
    me.set_checkpoint(checkpoint_id);
    me.set_job_id(job_id_);
    me.set_attempt(attempt_);
    me.set_subtask(subtask_);
    for (size_t i = 0; i < pending_.size(); ++i) {
      pending[i].set_checkpoint(pending_[i].checkpoint);
      pending[i].set_staging(pending_[i].staging);
      pending[i].set_final_name(pending_[i].final_name);
      me.add_staging_names(pending_[i].staging);
    }
    out->operator_state.push_back(PendingState().Encode(pending));
    out->operator_state.push_back(WritersState().Encode({me}));
    if (cfg_.commit) {
      const int64_t wm = std::max(current_wm_, late_floor_);
      wm_at_barrier_[checkpoint_id] = wm;
      std::vector<proto::CommittingFilePartition> parts(open_partitions_.size());
      size_t i = 0;
      for (const auto& [dir, end] : open_partitions_) {
        parts[i].set_dir(dir);
        parts[i++].set_end(end);
      }
      proto::CommittingFileEventTime et;
      et.set_watermark(wm);
      out->operator_state.push_back(PartitionsState().Encode(parts));
      out->operator_state.push_back(EventTimeState().Encode({et}));
      out->commit_watermark = committed_wm_;
    }
    // The counts claim the rows of this checkpoint's files (committed once it completes), but
    // not those of files whose checkpoint completed and whose commit failed: they are
    // "uncommitted" until a retry commits them (then the counts move back).
    int64_t stuck[3] = {0, 0, 0};
    for (const PendingFile& p : pending_) {
      if (p.checkpoint <= last_completed_) stuck[static_cast<int>(p.kind)] += p.rows;
    }
    const int64_t rows[3] = {rows_written_, late_rows_, dirty_rows_};
    for (int k = 0; k < 3; ++k) {
      counters_.Add(kCountNames[k], rows[k] - stuck[k] - counted_[k]);
      counters_.Add(kUncommittedNames[k], stuck[k] - counted_stuck_[k]);
      counted_[k] = rows[k] - stuck[k];
      counted_stuck_[k] = stuck[k];
    }
    counters_.Snapshot(out);
    CrashPoint("after_precommit");
    return Status::Ok();
  }

  void ReportMetrics(MetricWriter& out) const override {
    out.Gauge("weir_file_sink_open_writers", "Files being written (in progress)",
              static_cast<double>(writers_.size()));
    out.Gauge("weir_file_sink_pending_files", "Files sealed, waiting for their checkpoint",
              static_cast<double>(pending_.size() + sealed_.size()));
    out.Counter("weir_file_sink_committed_files_total", "Files committed (renamed into place)",
                static_cast<double>(committed_files_));
    out.Counter("weir_file_sink_committed_bytes_total", "Bytes of the files committed",
                static_cast<double>(committed_bytes_));
    out.Counter("weir_file_sink_partitions_committed_total",
                "Partitions marked complete (success file)",
                static_cast<double>(partitions_committed_));
    out.Counter("weir_file_sink_committed_rows_total", "Rows in committed files (at barriers)",
                static_cast<double>(counters_.Get("committed")));
    out.Counter("weir_file_sink_late_rows_total", "Rows for partitions already committed",
                static_cast<double>(counters_.Get("late")));
    out.Counter("weir_file_sink_dirty_rows_total", "Rows the sink could not write",
                static_cast<double>(counters_.Get("dirty")));
  }

  void NotifyCheckpointComplete(int64_t checkpoint_id) override {
    CrashPoint("before_commit");
    last_completed_ = std::max(last_completed_, checkpoint_id);
    Status st = CommitPending(checkpoint_id);
    if (!st.ok()) {
      Log()->error(
          "{} committing_file: commit of checkpoint {} failed (retried at the next "
          "completion): {}",
          log_prefix_, checkpoint_id, st.ToString());
      if (commit_error_.ok()) commit_error_ = st;
      return;
    }
    // Everything pre-committed up to this checkpoint is in place: the watermark at its
    // barrier is now covered by committed files.
    bool all_done = true;
    for (const PendingFile& p : pending_) all_done &= p.checkpoint > checkpoint_id;
    if (!all_done) return;
    auto end = wm_at_barrier_.upper_bound(checkpoint_id);
    if (end != wm_at_barrier_.begin()) {
      committed_wm_ = std::max(committed_wm_, std::prev(end)->second);
      wm_at_barrier_.erase(wm_at_barrier_.begin(), end);
    }
  }

  // The minimum commit watermark of all subtasks: partitions that ended at or before it are
  // complete everywhere.
  void NotifyCommitWatermark(int64_t checkpoint_id, int64_t watermark) override {
    if (!cfg_.commit || watermark == kMinWatermark) return;
    Status st = CommitPartitions(checkpoint_id, watermark);
    if (!st.ok()) {
      // Retried with the next completion (the partitions stay open); the next snapshot is
      // declined so the failure is seen.
      Log()->error("{} committing_file: partition commit at checkpoint {} failed: {}", log_prefix_,
                   checkpoint_id, st.ToString());
      if (commit_error_.ok()) commit_error_ = st;
    }
  }

  // Nothing to undo: the files stay pending and a later completion commits them (a checkpoint
  // that completes covers every earlier one).
  void NotifyCheckpointAborted(int64_t) override {}

  // The input ended: no checkpoint will come, so everything is committed now.
  Status Finish(Output&) override {
    if (!io_error_.ok()) return io_error_;
    WEIR_RETURN_IF_ERROR(PreCommit(next_checkpoint_));
    Status st = CommitPending(std::numeric_limits<int64_t>::max());
    ReportCounts();
    if (!lost_.ok()) return lost_;
    return st;
  }

  // Leaves staging as it is: after a crash or cancel, the restore logic sorts it out.
  Status Close() override {
    CloseAll();
    return Status::Ok();
  }

 private:
  using Kind = FileKind;
  struct Writer {
    std::string dir;   // relative directory of the final file ("": the sink's directory)
    std::string base;  // final file name
    Kind kind = Kind::kData;
    int fd = -1;
    std::string buf;  // rows not yet written
    int64_t rows = 0;
    int64_t bytes = 0;  // written to the file so far
    int64_t opened_ms = 0;
    int64_t last_write_ms = 0;
    std::unique_ptr<z_stream> z;  // gzip
    // format parquet (data and late files): rows are buffered in columns and reach `buf` a row
    // group at a time; `pq_buffered` is what buffered_pq_ holds of this file's buffered rows.
    std::unique_ptr<ParquetFileWriter> pq;
    int64_t pq_buffered = 0;
    int64_t plain_written = 0;  // plain size of the rows in the row groups written
  };
  static constexpr size_t kFlushBytes = 256 * 1024;

  std::string BaseName(int64_t seq, Kind kind) const {
    return cfg_.prefix + "-" + job_id_ + "-" + vertex_ + "-" + std::to_string(subtask_) + "-" +
           std::to_string(attempt_) + "-" + std::to_string(next_checkpoint_) + "-" +
           std::to_string(seq) + (kind == Kind::kDirty ? std::string(".jsonl") : cfg_.suffix);
  }
  std::string InProgressPath(const Writer& w) const {
    return staging_dir_ + "/" + w.base + std::string(kInProgress);
  }

  // An I/O error on a data file fails the task (Process returns it): after a failed write or
  // fsync its content cannot be trusted, and a restore rewrites it from the last checkpoint.
  Status Fail(Status st) {
    if (io_error_.ok()) io_error_ = st;
    CloseAll();
    return st;
  }

  void CloseAll() {
    for (auto& [dir, w] : writers_) {
      if (w->z) deflateEnd(w->z.get());
      if (w->fd >= 0) ::close(w->fd);
    }
    writers_.clear();
    last_ = nullptr;
    buffered_pq_ = 0;
  }

  // Whether the data files can hold `row` (else reason_ says why and the row is dirty): only
  // Parquet refuses rows, those with a string that is not UTF-8.
  bool Writable(const Row& row) {
    return cfg_.format != Format::kParquet || ParquetRowWritable(schema_, row, &reason_);
  }

  void AppendRow(Writer* w, const Row& row) {
    if (w->pq) {
      w->pq->Append(row);
      return;
    }
    if (cfg_.format == Format::kJson || w->kind == Kind::kDirty) {
      AppendJson(row, schema_, &w->buf);
    } else {
      AppendCsv(row, schema_, cfg_.csv_delimiter, &w->buf);
    }
    w->buf.push_back('\n');
  }

  Status AfterAppend(Writer* w, int64_t now) {
    w->last_write_ms = now;
    if (w->pq) return AfterParquetAppend(w);
    if (w->buf.size() >= kFlushBytes) WEIR_RETURN_IF_ERROR(FlushBuffer(w, false));
    if (cfg_.max_size > 0 && w->bytes + static_cast<int64_t>(w->buf.size()) >= cfg_.max_size) {
      WEIR_RETURN_IF_ERROR(Seal(w));
    }
    return Status::Ok();
  }

  // Parquet: a row group is written when the file's buffered rows reach row_group_size, or
  // when all files' buffered rows together reach buffer_memory (then the biggest one's).
  // Rolling by size counts encoded bytes: the row groups written, plus the buffered rows at
  // the compression ratio of the file's earlier row groups (1 before the first).
  Status AfterParquetAppend(Writer* w) {
    ParquetFileWriter& pq = *w->pq;
    buffered_pq_ += pq.buffered_bytes() - w->pq_buffered;
    w->pq_buffered = pq.buffered_bytes();
    if (pq.buffered_bytes() >= cfg_.row_group_size) WEIR_RETURN_IF_ERROR(FlushRowGroup(w));
    if (cfg_.max_size > 0) {
      const double ratio = w->plain_written > 0 ? static_cast<double>(pq.written_bytes()) /
                                                      static_cast<double>(w->plain_written)
                                                : 1.0;
      const double size = static_cast<double>(pq.written_bytes()) +
                          ratio * static_cast<double>(pq.buffered_bytes());
      if (size >= static_cast<double>(cfg_.max_size)) return Seal(w);
    }
    while (buffered_pq_ >= cfg_.buffer_memory) {
      Writer* biggest = w;
      for (auto& [dir, o] : writers_) {
        if (o->pq_buffered > biggest->pq_buffered) biggest = o.get();
      }
      if (biggest->pq_buffered == 0) break;
      WEIR_RETURN_IF_ERROR(FlushRowGroup(biggest));
    }
    return Status::Ok();
  }

  // Encodes a Parquet file's buffered rows as a row group and writes it.
  Status FlushRowGroup(Writer* w) {
    w->plain_written += w->pq->buffered_bytes();
    buffered_pq_ -= w->pq_buffered;
    w->pq_buffered = 0;
    Status st = w->pq->FlushRowGroup(&w->buf);
    if (!st.ok()) return Fail(st);
    return FlushBuffer(w, false);
  }

  Status WriteDirty(const Row& row, const std::string& reason, int64_t now) {
    ++dirty_rows_;
    Writer* w = last_;
    if (w == nullptr || w->kind != Kind::kDirty) {
      WEIR_ASSIGN_OR_RETURN(w, GetWriter(cfg_.dirty_dir, Kind::kDirty, 0, now));
      last_ = w;
    }
    std::string& b = w->buf;
    b.append("{\"reason\":\"");
    for (char c : reason) {
      if (c == '"' || c == '\\') b.push_back('\\');
      if (static_cast<unsigned char>(c) < 0x20) continue;
      b.push_back(c);
    }
    b.append("\",\"row\":");
    AppendJson(row, schema_, &b);
    b.append("}\n");
    ++w->rows;
    if (dirty_logged_ < 5 || now - last_dirty_log_ms_ >= 10000) {
      ++dirty_logged_;
      last_dirty_log_ms_ = now;
      Log()->warn("{} committing_file: dirty row ({} so far) to {}/: {}", log_prefix_, dirty_rows_,
                  cfg_.dirty_dir, reason);
    }
    return AfterAppend(w, now);
  }

  Result<Writer*> GetWriter(const std::string& dir, Kind kind, int64_t partition_end, int64_t now) {
    auto it = writers_.find(dir);
    if (it != writers_.end()) return it->second.get();
    if (static_cast<int64_t>(writers_.size()) >= cfg_.max_open_files) {
      // Close the least recently written file (pending at the next barrier) to stay within
      // the handle budget.
      Writer* lru = nullptr;
      for (auto& [d, w] : writers_) {
        if (lru == nullptr || w->last_write_ms < lru->last_write_ms) lru = w.get();
      }
      WEIR_RETURN_IF_ERROR(Seal(lru));
    }
    auto w = std::make_unique<Writer>();
    w->dir = dir;
    w->kind = kind;
    w->base = BaseName(seq_++, kind);
    w->opened_ms = now;
    w->last_write_ms = now;
    const std::string path = InProgressPath(*w);
    // O_EXCL: never truncate a file of another writer; names are unique by construction, so an
    // existing one means two writers claim the same (job, attempt, vertex, subtask).
    w->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) return Fail(Status::IoError("cannot create " + path + ": " + strerror(errno)));
    if (cfg_.gzip && kind != Kind::kDirty) {
      w->z = std::make_unique<z_stream>();
      std::memset(w->z.get(), 0, sizeof(z_stream));
      // 15 + 16: a gzip wrapper, so the file is a plain .gz.
      if (deflateInit2(w->z.get(), Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                       Z_DEFAULT_STRATEGY) != Z_OK) {
        w->z.reset();
        ::close(w->fd);
        return Fail(Status::Internal("zlib: deflateInit2 failed"));
      }
    }
    if (cfg_.format == Format::kParquet && kind != Kind::kDirty) {
      if (spare_pq_.empty()) {
        w->pq = std::make_unique<ParquetFileWriter>(schema_, cfg_.parquet);
      } else {
        w->pq = std::move(spare_pq_.back());
        spare_pq_.pop_back();
        w->pq->Reset();
      }
    }
    if (cfg_.format == Format::kCsv && cfg_.csv_header && kind != Kind::kDirty) {
      for (size_t i = 0; i < schema_.size(); ++i) {
        if (i > 0) w->buf.push_back(cfg_.csv_delimiter);
        AppendCsvField(schema_.field(i).name, cfg_.csv_delimiter, &w->buf);
      }
      w->buf.push_back('\n');
    }
    if (kind == Kind::kData && cfg_.commit) open_partitions_.emplace(dir, partition_end);
    Writer* raw = w.get();
    writers_.emplace(dir, std::move(w));
    return raw;
  }

  Status WriteAll(Writer* w, const char* data, size_t n) {
    while (n > 0) {
      const ssize_t k = ::write(w->fd, data, n);
      if (k < 0) {
        if (errno == EINTR) continue;
        return Fail(
            Status::IoError("write to " + InProgressPath(*w) + " failed: " + strerror(errno)));
      }
      data += k;
      n -= static_cast<size_t>(k);
      w->bytes += k;
    }
    return Status::Ok();
  }

  Status FlushBuffer(Writer* w, bool finish) {
    if (!w->z) {
      Status st = WriteAll(w, w->buf.data(), w->buf.size());
      w->buf.clear();
      return st;
    }
    z_stream* z = w->z.get();
    z->next_in = reinterpret_cast<Bytef*>(w->buf.data());
    z->avail_in = static_cast<uInt>(w->buf.size());
    zbuf_.resize(64 * 1024);
    int rc;
    do {
      z->next_out = reinterpret_cast<Bytef*>(zbuf_.data());
      z->avail_out = static_cast<uInt>(zbuf_.size());
      rc = deflate(z, finish ? Z_FINISH : Z_NO_FLUSH);
      if (rc == Z_STREAM_ERROR) return Fail(Status::Internal("zlib: deflate failed"));
      WEIR_RETURN_IF_ERROR(WriteAll(w, zbuf_.data(), zbuf_.size() - z->avail_out));
    } while (z->avail_out == 0 || (finish && rc != Z_STREAM_END));
    w->buf.clear();
    return Status::Ok();
  }

  // Closes a file (fsynced) and renames it to pending; it joins the next checkpoint.
  Status Seal(Writer* w) {
    if (last_ == w) last_ = nullptr;
    const std::string from = InProgressPath(*w);
    auto node = writers_.extract(w->dir);
    std::unique_ptr<Writer> owned = std::move(node.mapped());
    buffered_pq_ -= owned->pq_buffered;
    if (owned->rows == 0) {
      if (owned->z) deflateEnd(owned->z.get());
      ::close(owned->fd);
      std::error_code ec;
      fs::remove(from, ec);
      return Status::Ok();
    }
    // Parquet: the last row group and the footer.
    Status st = owned->pq ? owned->pq->Finish(&owned->buf) : Status::Ok();
    if (!st.ok()) {
      ::close(owned->fd);
      return Fail(st);
    }
    st = FlushBuffer(owned.get(), true);
    // Its buffers serve the next file (a few kept: their memory is bounded by row_group_size).
    if (owned->pq && spare_pq_.size() < kSpareParquetWriters) {
      spare_pq_.push_back(std::move(owned->pq));
    }
    if (owned->z) deflateEnd(owned->z.get());
    owned->z.reset();
    if (!st.ok()) {
      ::close(owned->fd);
      return st;
    }
    if (::fsync(owned->fd) != 0) {
      const int err = errno;
      ::close(owned->fd);
      return Fail(Status::IoError("fsync of " + from + " failed: " + strerror(err)));
    }
    if (::close(owned->fd) != 0) {
      return Fail(Status::IoError("close of " + from + " failed: " + strerror(errno)));
    }
    PendingFile p;
    p.checkpoint = -1;  // assigned at the next barrier
    p.staging = owned->base + std::string(kPending);
    p.final_name = owned->dir.empty() ? owned->base : owned->dir + "/" + owned->base;
    p.kind = owned->kind;
    p.rows = owned->rows;
    p.bytes = owned->bytes;
    const std::string to = staging_dir_ + "/" + p.staging;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Fail(Status::IoError("rename " + from + " -> " + to + " failed: " + strerror(errno)));
    }
    sealed_.push_back(std::move(p));
    return Status::Ok();
  }

  Status SealAll() {
    std::vector<Writer*> all;
    for (auto& [dir, w] : writers_) all.push_back(w.get());
    for (Writer* w : all) WEIR_RETURN_IF_ERROR(Seal(w));
    return Status::Ok();
  }

  // Closes every open file and makes everything sealed since the last barrier pending for
  // `checkpoint_id`.
  Status PreCommit(int64_t checkpoint_id) {
    WEIR_RETURN_IF_ERROR(SealAll());
    if (sealed_.empty()) return Status::Ok();
    for (PendingFile& p : sealed_) {
      p.checkpoint = checkpoint_id;
      pending_.push_back(std::move(p));
    }
    sealed_.clear();
    // The checkpoint will name the pending files: their names must survive a crash.
    Status st = SyncDir(staging_dir_);
    if (!st.ok()) return Fail(st);
    return Status::Ok();
  }

  // Moves one pending file to its final name; false if it is in neither place. Idempotent:
  // a file at its final name and gone from staging was committed before (a crash between the
  // rename and the bookkeeping).
  Result<bool> CommitOne(const PendingFile& p) {
    const std::string from = staging_dir_ + "/" + p.staging;
    const std::string to = dir_ + "/" + p.final_name;
    std::error_code ec;
    const bool staged = fs::exists(from, ec);
    if (ec) return Status::IoError("cannot stat " + from + ": " + ec.message());
    const bool committed = fs::exists(to, ec);
    if (ec) return Status::IoError("cannot stat " + to + ": " + ec.message());
    if (!staged) return committed;
    if (committed) {
      // Never replace committed output (rename would, silently).
      return Status::AlreadyExists("cannot commit " + from + ": " + to + " already exists");
    }
    const size_t slash = p.final_name.rfind('/');
    if (slash != std::string::npos) {
      WEIR_RETURN_IF_ERROR(EnsureDir(dir_, std::string_view(p.final_name).substr(0, slash)));
    }
    if (::rename(from.c_str(), to.c_str()) != 0) {
      const int err = errno;
      // Someone else committed it in between: after a failover, a subtask of the old attempt
      // that is not yet cancelled may still handle the checkpoint's late notification.
      if (err == ENOENT && fs::exists(to, ec)) return true;
      return Status::IoError("rename " + from + " -> " + to + " failed: " + strerror(err));
    }
    return true;
  }

  // Commits the pending files of checkpoints <= up_to. Files that cannot be committed now stay
  // pending (the first such error is returned); a file missing from both places is data loss:
  // it is dropped and remembered in lost_.
  Status CommitPending(int64_t up_to) {
    Status first_error;
    std::vector<PendingFile> keep;
    std::vector<PendingFile> done;
    std::set<std::string> dirs;  // final directories that got a file
    size_t renamed = 0;
    for (PendingFile& p : pending_) {
      if (p.checkpoint > up_to) {
        keep.push_back(std::move(p));
        continue;
      }
      if (renamed == 1) CrashPoint("between_renames");
      Result<bool> r = CommitOne(p);
      if (!r.ok()) {
        if (first_error.ok()) first_error = r.status();
        keep.push_back(std::move(p));
      } else if (!*r) {
        const std::string what = "pending file " + staging_dir_ + "/" + p.staging +
                                 " of checkpoint " + std::to_string(p.checkpoint) +
                                 " is missing: neither in staging nor committed as " + dir_ + "/" +
                                 p.final_name + "; its records are lost from the output";
        Log()->error("{} committing_file: {}", log_prefix_, what);
        lost_ =
            lost_.ok() ? Status::DataLoss(what) : Status::DataLoss(lost_.message() + "; " + what);
      } else {
        ++renamed;
        ++committed_files_;
        committed_bytes_ += p.bytes;
        const size_t slash = p.final_name.rfind('/');
        dirs.insert(slash == std::string::npos ? dir_ : dir_ + "/" + p.final_name.substr(0, slash));
        done.push_back(std::move(p));
      }
    }
    if (!done.empty()) {
      // Both directories: the new name must be durable before the entry is forgotten (else a
      // crash could bring the file back into staging, unnamed by any later checkpoint, and the
      // restore would delete it), and the old one gone so it is not found twice.
      Status st;
      for (const std::string& d : dirs) {
        if (st.ok()) st = SyncDir(d);
      }
      if (st.ok()) st = SyncDir(staging_dir_);
      if (!st.ok()) {
        // Kept: the next attempt finds them committed (idempotent) and syncs again.
        if (first_error.ok()) first_error = st;
        keep.insert(keep.end(), std::make_move_iterator(done.begin()),
                    std::make_move_iterator(done.end()));
        std::sort(keep.begin(), keep.end(), [](const PendingFile& a, const PendingFile& b) {
          return a.checkpoint < b.checkpoint;
        });
      }
    }
    pending_ = std::move(keep);
    return first_error;
  }

  // Writes the success file into every partition of ours that ended by `watermark` (plus the
  // delay), and, with empty_partitions, into every time partition up to it.
  Status CommitPartitions(int64_t checkpoint_id, int64_t watermark) {
    const int64_t delay = cfg_.commit_delay_ms;
    int marked = 0;
    for (auto it = open_partitions_.begin(); it != open_partitions_.end();) {
      if (!PartitionComplete(it->second, delay, watermark)) {
        ++it;
        continue;
      }
      // A partition still written to now stays open: its rows are on time, so it is not
      // complete after all (can only happen when the watermark went back after a restore).
      if (writers_.count(it->first)) {
        ++it;
        continue;
      }
      WEIR_ASSIGN_OR_RETURN(bool created, WriteMarker(it->first));
      marked += created;
      it = open_partitions_.erase(it);
    }
    int64_t last_start = 0;
    if (cfg_.commit_empty && subtask_ == 0 &&
        LastCompleteStart(watermark, delay, tmpl_.granularity_ms(), &last_start)) {
      // One subtask enumerates the time partitions. It starts once, at the earliest partition
      // it wrote on time (so gaps after it are marked), else at the newest complete one, and
      // never moves back. Bounded: at most empty_limit partitions before the newest complete
      // one (a row from year 1 must not make millions of directories), and at most
      // empty_limit per commit (a watermark that jumps ahead is caught up over several).
      const int64_t g = tmpl_.granularity_ms();
      const int64_t limit = cfg_.empty_limit;
      if (!empty_started_) {
        empty_started_ = true;
        const __int128 lowest = static_cast<__int128>(last_start) - (limit - 1) * g;
        next_empty_start_ = std::min(min_start_seen_, last_start);
        if (next_empty_start_ < lowest) {
          Log()->warn(
              "{} committing_file: empty_partitions: the earliest partition written "
              "starts at {}, more than {} partitions before the newest complete one; "
              "marking from {}",
              log_prefix_, TimestampToString(next_empty_start_), limit,
              TimestampToString(static_cast<int64_t>(lowest)));
          next_empty_start_ = static_cast<int64_t>(lowest);
        }
      }
      int64_t n = 0;
      int64_t s = next_empty_start_;
      bool more = s <= last_start;
      while (more && n < limit) {
        WEIR_ASSIGN_OR_RETURN(bool created, WriteMarker(tmpl_.RenderTime(s)));
        marked += created;
        ++n;
        // s + g cannot pass last_start + g <= watermark + 1; checked all the same.
        if (__builtin_add_overflow(s, g, &s)) break;
        more = s <= last_start;
      }
      next_empty_start_ = s;
      if (more) {
        ++empty_deferred_;
        Log()->warn(
            "{} committing_file: empty_partitions: marked {} partitions at checkpoint "
            "{} (the limit); the rest up to {} follow at the next commits ({} deferred "
            "so far)",
            log_prefix_, n, checkpoint_id, TimestampToString(last_start), empty_deferred_);
      }
    }
    partitions_committed_ += marked;
    if (marked > 0) {
      Log()->info("{} committing_file: checkpoint={} committed {} partition(s) up to watermark {}",
                  log_prefix_, checkpoint_id, marked, TimestampToString(watermark));
    }
    return Status::Ok();
  }

  // Creates <dir>/<success file> once; false if it was already there.
  Result<bool> WriteMarker(const std::string& rel) {
    WEIR_RETURN_IF_ERROR(EnsureDir(dir_, rel));
    const std::string d = dir_ + "/" + rel;
    const std::string path = d + "/" + cfg_.success_file;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) return false;
      return Status::IoError("cannot create " + path + ": " + strerror(errno));
    }
    ::close(fd);
    WEIR_RETURN_IF_ERROR(SyncDir(d));
    return true;
  }

  void ReportCounts() {
    if (late_rows_ == 0 && dirty_rows_ == 0) return;
    Log()->info("{} committing_file: {} rows written, {} late (to {}/), {} dirty (to {}/)",
                log_prefix_, rows_written_, late_rows_, cfg_.late_dir, dirty_rows_, cfg_.dirty_dir);
  }

  // After a restore (or a fresh start), deletes the staging files whose records the job will
  // write again: those of this vertex, written by an earlier writer of this lineage (a job id
  // in `jobs`), that the restored checkpoint does not name (`needed`). Such a file was written
  // after the checkpoint (everything before it is committed or named as pending), so its rows
  // are replayed from the restored source positions.
  //
  // Safe under rescaling: every new subtask scans all of the vertex's files, not a share, since
  // after a rescale no old subtask maps to one new subtask. What a scan must not touch is
  // (1) a file the checkpoint names: it may be committed right now by whichever new subtask got
  // its SPLIT entry. `needed` holds the names from the UNION list, i.e. from every old subtask;
  // a SPLIT list would only show this subtask's share. (2) A file of this attempt: written by a
  // sibling subtask that already started. Same job id and attempt means ours, so it is skipped.
  // Concurrent scans may delete the same file: "already gone" is fine.
  //
  // On a fresh start `jobs` is this job only and `needed` is empty: earlier attempts' files of
  // this job are deleted (a stateless restart replays everything), other jobs' never are.
  Status DeleteLeftovers(const std::set<std::string>& jobs, const std::set<std::string>& needed,
                         int64_t restored_id) {
    std::error_code ec;
    fs::directory_iterator it(staging_dir_, ec);
    if (ec) return Status::IoError("cannot list " + staging_dir_ + ": " + ec.message());
    int deleted = 0;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) return Status::IoError("cannot list " + staging_dir_ + ": " + ec.message());
      const std::string name = it->path().filename().string();
      StagingName parsed;
      // Data files end in the configured suffix, dirty-data files in ".jsonl".
      if (!ParseStagingName(name, cfg_.suffix, &parsed) &&
          !ParseStagingName(name, ".jsonl", &parsed)) {
        continue;
      }
      bool ours = false;
      std::string job;
      for (const std::string& j : jobs) {
        if (parsed.owner == cfg_.prefix + "-" + j + "-" + vertex_) {
          ours = true;
          job = j;
        }
      }
      if (!ours) continue;
      if (job == job_id_ && parsed.attempt == attempt_) continue;  // a live sibling's
      if (needed.count(name)) continue;
      std::error_code rm;
      // False without an error when another subtask's scan was first.
      const bool removed = fs::remove(it->path(), rm);
      if (rm) {
        // Harmless if it stays (staging is hidden; its name is never reused): warn only.
        Log()->warn("{} committing_file: cannot delete leftover {}: {}", log_prefix_,
                    it->path().string(), rm.message());
        continue;
      }
      if (removed) ++deleted;
    }
    if (deleted > 0) {
      Log()->info("{} committing_file: deleted {} staging file(s) written after {}", log_prefix_,
                  deleted,
                  restored_id >= 0 ? "checkpoint " + std::to_string(restored_id)
                                   : std::string("an earlier stateless start"));
    }
    return Status::Ok();
  }

  Schema schema_;
  const FileSinkConfig cfg_;
  const std::string dir_;
  const std::string staging_dir_;
  PartitionTemplate tmpl_;
  std::string job_id_;
  std::string vertex_;
  int subtask_ = 0;
  int attempt_ = 0;
  std::string log_prefix_;

  int64_t next_checkpoint_ = 1;  // the first checkpoint that can cover the next file
  int64_t seq_ = 0;              // files opened so far by this writer
  std::unordered_map<std::string, std::unique_ptr<Writer>> writers_;  // open, by directory
  Writer* last_ = nullptr;            // the writer of the previous row
  std::vector<PendingFile> sealed_;   // closed since the last barrier
  std::vector<PendingFile> pending_;  // staged, not yet committed; by checkpoint
  std::string scratch_dir_;
  std::string reason_;
  std::string zbuf_;

  // Event time and partition commit.
  int64_t current_wm_ = kMinWatermark;              // input watermark
  int64_t late_floor_ = kMinWatermark;              // restored: rows at or before it stay late
  int64_t committed_wm_ = kMinWatermark;            // covered by committed files
  std::map<int64_t, int64_t> wm_at_barrier_;        // checkpoint -> input watermark
  std::map<std::string, int64_t> open_partitions_;  // written, not yet marked: dir -> end
  int64_t committed_files_ = 0, committed_bytes_ = 0, partitions_committed_ = 0;  // metrics
  bool empty_started_ = false;              // empty_partitions (subtask 0):
  int64_t next_empty_start_ = 0;            //   the next one to mark
  int64_t empty_deferred_ = 0;              //   commits that hit the limit
  int64_t min_start_seen_ = kMaxWatermark;  // earliest partition written on time
  int64_t last_completed_ = 0;              // the newest completed checkpoint

  int64_t rows_written_ = 0, late_rows_ = 0, dirty_rows_ = 0;
  // Reconciliation: what the counters already hold of the three above.
  RecordCounters counters_;
  // By FileKind: what the counters hold of the rows as committed, and as uncommitted.
  static constexpr const char* kCountNames[3] = {"committed", "late", "dirty"};
  static constexpr const char* kUncommittedNames[3] = {"uncommitted", "uncommitted_late",
                                                       "uncommitted_dirty"};
  int64_t counted_[3] = {0, 0, 0};
  int64_t counted_stuck_[3] = {0, 0, 0};
  int64_t dirty_logged_ = 0, last_dirty_log_ms_ = 0;
  int64_t last_roll_check_ms_ = 0, last_report_ms_ = 0;

  int64_t buffered_pq_ = 0;  // plain bytes buffered by all open Parquet files
  static constexpr size_t kSpareParquetWriters = 2;
  std::vector<std::unique_ptr<ParquetFileWriter>> spare_pq_;  // finished, for the next files
  std::vector<size_t> unwritable_;  // Process: rows of the batch Parquet cannot hold
  Status io_error_;                 // sticky: a data file could not be written
  Status lost_;                     // sticky: a pending file vanished
  Status commit_error_;             // the last failed commit, reported by the next snapshot
};

class CommittingFileSinkFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_RETURN_IF_ERROR(PlanFileSink(config, input).status());
    return Schema();
  }
  // late_dir and dirty_dir are plain names below path; partitions are rendered below it too.
  std::vector<std::string> OutputPathKeys() const override { return {"path"}; }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(FileSinkConfig c, PlanFileSink(config, input));
    WEIR_ASSIGN_OR_RETURN(
        PartitionTemplate t,
        PartitionTemplate::Parse(c.partition, input, config.path() + ".partition"));
    return std::unique_ptr<Operator>(
        std::make_unique<CommittingFileSink>(input, std::move(c), std::move(t)));
  }
};

}  // namespace

std::unique_ptr<OperatorFactory> MakeCommittingFileSinkFactory() {
  return std::make_unique<CommittingFileSinkFactory>();
}

Status CheckCommittingFileRestoredState(const RestoredState& restored) {
  return ReadRestoredLists(&restored).status();
}

}  // namespace weir
