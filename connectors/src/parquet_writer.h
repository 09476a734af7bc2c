// ParquetFileWriter: writes Weir rows of a flat schema as one Parquet file, columnar. Promises:
// every row appended (after ParquetRowWritable said yes) is in the bytes it hands out, which
// form a valid Parquet file once Finish returned; buffered rows use at most about
// buffered_bytes() of memory (plain size), and the caller decides when they become a row group.
// The layout (docs/file-sink.md, "Parquet"): every column OPTIONAL with definition levels;
// data pages v1, PLAIN, or a dictionary (RLE_DICTIONARY) for strings and bytes when it is
// smaller; min, max and null count per column chunk; none, snappy or zstd per page.
//
// Not thread-safe: one writer per file, used by one thread (the sink's task thread). The
// Thrift code, snappy and zstd are private to weir_parquet (none of them appear here).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "weir/status.h"
#include "weir/types.h"

namespace weir {

enum class ParquetCompression { kNone, kSnappy, kZstd };

struct ParquetOptions {
  ParquetCompression compression = ParquetCompression::kSnappy;
  int64_t page_size = 1 << 20;  // plain bytes of values per data page (about)
  bool dictionary = true;       // try a dictionary for string and bytes columns
};

// OK if every field of `schema` maps to a Parquet column: bool, int64, double, string (UTF8),
// bytes, timestamp (INT64, TIMESTAMP(MILLIS, UTC)). Anything else (a null-typed field, and any
// nested or list type) is refused: InvalidArgument "<where>: field 'x' has type T, which ...".
Status CheckParquetSchema(const Schema& schema, const std::string& where);

// Whether `row` can be written to a Parquet file of `schema` (checked by CheckParquetSchema):
// every value is null or of its field's type, and every string is valid UTF-8 (Parquet's
// STRING must be). If not, false and `*reason` names the field, e.g. "field 'app' is not
// valid UTF-8 (byte 0xFF at offset 3)". Cost: one UTF-8 scan per string value.
bool ParquetRowWritable(const Schema& schema, const Row& row, std::string* reason);

class ParquetFileWriter {
 public:
  // `schema` must pass CheckParquetSchema.
  ParquetFileWriter(const Schema& schema, const ParquetOptions& options);
  ~ParquetFileWriter();
  ParquetFileWriter(const ParquetFileWriter&) = delete;
  ParquetFileWriter& operator=(const ParquetFileWriter&) = delete;

  // Buffers one row (which ParquetRowWritable accepted) in the column vectors. Amortised: no
  // allocation per row once the vectors have grown to a row group's size.
  void Append(const Row& row);
  // Rows buffered for the next row group, and their plain-encoded size (the row group's size
  // before compression and dictionaries).
  int64_t buffered_rows() const;
  int64_t buffered_bytes() const;
  // Rows in the file so far (written row groups and buffered ones).
  int64_t rows() const;
  // Bytes handed out so far (the file's size up to here).
  int64_t written_bytes() const;

  // Encodes the buffered rows as one row group and appends its bytes to *out (the first call
  // also appends the leading magic). Nothing buffered: nothing appended.
  Status FlushRowGroup(std::string* out);
  // Flushes the last row group and appends the footer: *out then ends the file. The writer
  // takes no rows afterwards, until Reset.
  Status Finish(std::string* out);
  // Starts a new file with the same schema and options, keeping the buffers' memory (a new
  // writer per file would grow them, and fault their pages in, again for every file).
  void Reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir
