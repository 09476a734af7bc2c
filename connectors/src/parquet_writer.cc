// The Parquet writer (parquet_writer.h). File layout, from the Parquet specification:
//
//   "PAR1" <row group>... <FileMetaData (Thrift compact)> <its length, 4 bytes LE> "PAR1"
//   row group   = one column chunk per field, in schema order
//   column chunk = [dictionary page] data page...
//   page        = <PageHeader (Thrift compact)> <body, compressed as a whole>
//   data page v1 body = <definition levels: 4-byte LE length, RLE/bit-packed hybrid, width 1>
//                       <values of the non-null rows: PLAIN, or RLE_DICTIONARY (1 byte bit
//                        width, then the indices as RLE/bit-packed hybrid)>
//
// Values are buffered per column in contiguous vectors (strings: one byte buffer and offsets)
// and encoded per page when a row group is flushed; the encoding buffers are members reused
// from one page to the next.
#include "parquet_writer.h"

#include <snappy.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "parquet_types.h"
#include "weir/text_formats.h"

namespace weir {
namespace pf = parquet_format;

namespace {

// The longest min or max of a string/bytes column chunk kept in the statistics: longer ones
// would bloat the footer (and truncating a max needs care), so such a chunk has none.
constexpr size_t kMaxStatBytes = 256;
// A dictionary is given up beyond these (one dictionary page per column chunk).
constexpr size_t kMaxDictEntries = 1 << 16;
constexpr size_t kMaxDictBytes = 1 << 20;
constexpr int kZstdLevel = 3;  // zstd's own default

constexpr char kMagic[] = "PAR1";

template <typename T>
void AppendLE(T v, std::string* out) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86-64 and aarch64 are little-endian
  out->append(b, sizeof(T));
}
static_assert(std::endian::native == std::endian::little, "Parquet's PLAIN is little-endian");

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// The RLE / bit-packed hybrid of the specification (Encodings.md), without a length prefix.
// A run of 8 or more equal values becomes an RLE run; the rest goes into bit-packed groups of
// 8 values (at most 63 groups per header; only the very last group is padded).
template <typename T>
void AppendRleHybrid(const T* v, size_t n, int width, std::string* out) {
  const int value_bytes = (width + 7) / 8;
  size_t i = 0;
  while (i < n) {
    size_t run = 1;
    while (i + run < n && v[i + run] == v[i]) ++run;
    if (run >= 8) {
      AppendVarint(static_cast<uint64_t>(run) << 1, out);
      const uint32_t x = static_cast<uint32_t>(v[i]);
      for (int k = 0; k < value_bytes; ++k) out->push_back(static_cast<char>(x >> (8 * k)));
      i += run;
      continue;
    }
    const size_t start = i;
    size_t groups = 0;
    while (i < n && groups < 63) {
      if (groups > 0) {  // stop where a long run begins (at a group boundary)
        size_t r = 1;
        while (r < 8 && i + r < n && v[i + r] == v[i]) ++r;
        if (r >= 8) break;
      }
      i += 8;
      ++groups;
    }
    i = std::min(i, n);
    AppendVarint((groups << 1) | 1, out);
    uint64_t acc = 0;
    int bits = 0;
    for (size_t k = start; k < start + groups * 8; ++k) {
      const uint64_t x = k < n ? static_cast<uint64_t>(v[k]) : 0;
      acc |= x << bits;
      bits += width;
      while (bits >= 8) {
        out->push_back(static_cast<char>(acc & 0xFF));
        acc >>= 8;
        bits -= 8;
      }
    }
    // groups * 8 * width is a multiple of 8 bits: nothing is left in acc.
  }
}

int BitWidth(uint64_t max_value) {
  return std::max(1, static_cast<int>(std::bit_width(max_value)));
}

// Unsigned lexicographic order of bytes, as Parquet orders BYTE_ARRAY.
bool BytesLess(std::string_view a, std::string_view b) {
  const int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  return c < 0 || (c == 0 && a.size() < b.size());
}

pf::Type::type PhysicalType(Type t) {
  switch (t) {
    case Type::kBool:
      return pf::Type::BOOLEAN;
    case Type::kInt64:
    case Type::kTimestamp:
      return pf::Type::INT64;
    case Type::kDouble:
      return pf::Type::DOUBLE;
    case Type::kString:
    case Type::kBytes:
      return pf::Type::BYTE_ARRAY;
    case Type::kNull:
      break;
  }
  return pf::Type::BYTE_ARRAY;  // unreachable: CheckParquetSchema refused it
}

pf::CompressionCodec::type Codec(ParquetCompression c) {
  switch (c) {
    case ParquetCompression::kNone:
      return pf::CompressionCodec::UNCOMPRESSED;
    case ParquetCompression::kSnappy:
      return pf::CompressionCodec::SNAPPY;
    case ParquetCompression::kZstd:
      return pf::CompressionCodec::ZSTD;
  }
  return pf::CompressionCodec::UNCOMPRESSED;
}

// One column's buffered values of the current row group.
struct Column {
  std::string name;
  Type type;
  std::vector<uint8_t> defs;  // per row: 1 value present, 0 null
  std::vector<int64_t> ints;  // int64, timestamp
  std::vector<double> doubles;
  std::vector<uint8_t> bools;
  std::string bytes;              // string, bytes: the values back to back
  std::vector<uint32_t> offsets;  // value k is bytes[offsets[k], offsets[k + 1])
  int64_t plain_bytes = 0;        // PLAIN size of the values

  size_t values() const {
    switch (type) {
      case Type::kBool:
        return bools.size();
      case Type::kInt64:
      case Type::kTimestamp:
        return ints.size();
      case Type::kDouble:
        return doubles.size();
      default:
        return offsets.size() - 1;
    }
  }
  std::string_view Str(size_t k) const {
    return std::string_view(bytes).substr(offsets[k], offsets[k + 1] - offsets[k]);
  }
  void Clear() {
    defs.clear();
    ints.clear();
    doubles.clear();
    bools.clear();
    bytes.clear();
    offsets.assign(1, 0);
    plain_bytes = 0;
  }
};

}  // namespace

Status CheckParquetSchema(const Schema& schema, const std::string& where) {
  for (const Field& f : schema.fields()) {
    switch (f.type) {
      case Type::kBool:
      case Type::kInt64:
      case Type::kDouble:
      case Type::kString:
      case Type::kBytes:
      case Type::kTimestamp:
        continue;
      case Type::kNull:
        break;
    }
    return Status::InvalidArgument(where + ": field '" + f.name + "' has type " + TypeName(f.type) +
                                   ", which format parquet cannot hold (flat columns of bool, "
                                   "int64, double, string, bytes or timestamp only; nested and "
                                   "list types are not supported)");
  }
  return Status::Ok();
}

bool ParquetRowWritable(const Schema& schema, const Row& row, std::string* reason) {
  for (size_t i = 0; i < schema.size(); ++i) {
    const Value& v = row[i];
    const Field& f = schema.field(i);
    if (v.is_null()) continue;
    if (v.type != f.type) {
      *reason =
          "field '" + f.name + "' holds a " + TypeName(v.type) + " value, not " + TypeName(f.type);
      return false;
    }
    if (v.type != Type::kString) continue;
    const size_t bad = FirstInvalidUtf8(v.s);
    if (bad == v.s.size()) continue;
    static constexpr char kHex[] = "0123456789ABCDEF";
    const unsigned char c = static_cast<unsigned char>(v.s[bad]);
    *reason = "field '" + f.name + "' is not valid UTF-8 (byte 0x" + kHex[c >> 4] + kHex[c & 15] +
              " at offset " + std::to_string(bad) + "), which a Parquet string must be";
    return false;
  }
  return true;
}

struct ParquetFileWriter::Impl {
  ParquetOptions options;
  std::vector<Column> columns;
  int64_t buffered_rows = 0;
  int64_t buffered_bytes = 0;
  int64_t rows = 0;
  int64_t written = 0;   // bytes handed out
  int64_t out_base = 0;  // during FlushRowGroup: the file offset of (*out)[0]
  bool finished = false;
  std::vector<pf::RowGroup> row_groups;

  // Thrift: one compact protocol over one memory buffer, reset per message.
  std::shared_ptr<apache::thrift::transport::TMemoryBuffer> tbuf =
      std::make_shared<apache::thrift::transport::TMemoryBuffer>();
  apache::thrift::protocol::TCompactProtocolT<apache::thrift::transport::TMemoryBuffer> proto{tbuf};
  ZSTD_CCtx* zstd = nullptr;

  // Reused per page.
  std::string body;               // uncompressed page body
  std::string compressed;         // its compressed form
  std::string levels;             // encoded definition levels
  std::vector<uint32_t> indices;  // dictionary indices of the chunk's values
  std::vector<uint32_t> dict;     // value index of each dictionary entry
  std::vector<int32_t> slots;     // open addressing: dictionary entry + 1, 0 empty

  ~Impl() {
    if (zstd) ZSTD_freeCCtx(zstd);
  }

  template <typename T>
  void Serialize(const T& msg, std::string* out) {
    tbuf->resetBuffer();
    msg.write(&proto);
    uint8_t* p;
    uint32_t n;
    tbuf->getBuffer(&p, &n);
    out->append(reinterpret_cast<const char*>(p), n);
  }

  // `body` compressed with the file's codec into `compressed`.
  Status Compress() {
    compressed.clear();
    switch (options.compression) {
      case ParquetCompression::kNone:
        break;  // EmitPage writes `body` itself
      case ParquetCompression::kSnappy:
        snappy::Compress(body.data(), body.size(), &compressed);
        break;
      case ParquetCompression::kZstd: {
        if (!zstd) zstd = ZSTD_createCCtx();
        if (!zstd) return Status::Internal("zstd: cannot create a compression context");
        compressed.resize(ZSTD_compressBound(body.size()));
        const size_t n = ZSTD_compressCCtx(zstd, compressed.data(), compressed.size(), body.data(),
                                           body.size(), kZstdLevel);
        if (ZSTD_isError(n)) {
          return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(n));
        }
        compressed.resize(n);
        break;
      }
    }
    return Status::Ok();
  }

  // Appends one page (header + compressed body) to *out; adds to the chunk's sizes.
  Status EmitPage(pf::PageHeader& header, std::string* out, int64_t* uncompressed,
                  int64_t* compressed_total) {
    if (body.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      return Status::ResourceExhausted("parquet: a page of " + std::to_string(body.size()) +
                                       " bytes is over 2 GiB");
    }
    WEIR_RETURN_IF_ERROR(Compress());
    const std::string& payload =
        options.compression == ParquetCompression::kNone ? body : compressed;
    header.__set_uncompressed_page_size(static_cast<int32_t>(body.size()));
    header.__set_compressed_page_size(static_cast<int32_t>(payload.size()));
    const size_t before = out->size();
    Serialize(header, out);
    const int64_t header_bytes = static_cast<int64_t>(out->size() - before);
    out->append(payload);
    *uncompressed += header_bytes + static_cast<int64_t>(body.size());
    *compressed_total += header_bytes + static_cast<int64_t>(payload.size());
    return Status::Ok();
  }

  // Tries a dictionary for a string/bytes column: fills `dict` and `indices` and returns true
  // if it is smaller than PLAIN.
  bool BuildDictionary(const Column& c) {
    const size_t n = c.values();
    dict.clear();
    indices.clear();
    if (n < 2) return false;
    size_t cap = 1024;
    while (cap < 2 * std::min(n, kMaxDictEntries)) cap <<= 1;
    slots.assign(cap, 0);
    indices.reserve(n);
    int64_t dict_bytes = 0;
    const std::hash<std::string_view> hash;
    for (size_t k = 0; k < n; ++k) {
      const std::string_view s = c.Str(k);
      size_t h = hash(s) & (cap - 1);
      while (true) {
        const int32_t e = slots[h];
        if (e == 0) {
          if (dict.size() >= kMaxDictEntries) return false;
          dict_bytes += 4 + static_cast<int64_t>(s.size());
          if (dict_bytes > static_cast<int64_t>(kMaxDictBytes)) return false;
          dict.push_back(static_cast<uint32_t>(k));
          slots[h] = static_cast<int32_t>(dict.size());
          indices.push_back(static_cast<uint32_t>(dict.size() - 1));
          break;
        }
        if (c.Str(dict[e - 1]) == s) {
          indices.push_back(static_cast<uint32_t>(e - 1));
          break;
        }
        h = (h + 1) & (cap - 1);
      }
    }
    const int64_t index_bytes = (static_cast<int64_t>(n) * BitWidth(dict.size() - 1) + 7) / 8 + 1;
    return dict_bytes + index_bytes < c.plain_bytes;
  }

  // PLAIN values [v0, v1) of `c` appended to `body`.
  void AppendPlain(const Column& c, size_t v0, size_t v1) {
    switch (c.type) {
      case Type::kBool: {
        uint8_t acc = 0;
        int bits = 0;
        for (size_t k = v0; k < v1; ++k) {
          acc |= static_cast<uint8_t>(c.bools[k] << bits);
          if (++bits == 8) {
            body.push_back(static_cast<char>(acc));
            acc = 0;
            bits = 0;
          }
        }
        if (bits) body.push_back(static_cast<char>(acc));
        break;
      }
      case Type::kInt64:
      case Type::kTimestamp:
        body.append(reinterpret_cast<const char*>(c.ints.data() + v0), (v1 - v0) * 8);
        break;
      case Type::kDouble:
        body.append(reinterpret_cast<const char*>(c.doubles.data() + v0), (v1 - v0) * 8);
        break;
      default:
        for (size_t k = v0; k < v1; ++k) {
          const std::string_view s = c.Str(k);
          AppendLE(static_cast<uint32_t>(s.size()), &body);
          body.append(s);
        }
    }
  }

  // Min, max and null count of the chunk (min/max PLAIN, byte arrays without length).
  pf::Statistics Stats(const Column& c) const {
    pf::Statistics st;
    const size_t n = c.values();
    st.__set_null_count(static_cast<int64_t>(c.defs.size() - n));
    if (n == 0) return st;
    std::string lo, hi;
    switch (c.type) {
      case Type::kBool: {
        bool any_false = false, any_true = false;
        for (uint8_t b : c.bools) (b ? any_true : any_false) = true;
        lo.push_back(any_false ? 0 : 1);
        hi.push_back(any_true ? 1 : 0);
        break;
      }
      case Type::kInt64:
      case Type::kTimestamp: {
        const auto [mn, mx] = std::minmax_element(c.ints.begin(), c.ints.end());
        AppendLE(*mn, &lo);
        AppendLE(*mx, &hi);
        break;
      }
      case Type::kDouble: {
        // NaN is left out; the specification's rule for zeros: a min of 0 is written -0.0 and a
        // max of 0 is +0.0, so readers never skip a chunk holding the other zero.
        double mn = std::numeric_limits<double>::infinity(), mx = -mn;
        bool any = false;
        for (double d : c.doubles) {
          if (std::isnan(d)) continue;
          any = true;
          mn = std::min(mn, d);
          mx = std::max(mx, d);
        }
        if (!any) return st;
        if (mn == 0) mn = -0.0;
        if (mx == 0) mx = 0.0;
        AppendLE(mn, &lo);
        AppendLE(mx, &hi);
        break;
      }
      default: {
        std::string_view mn = c.Str(0), mx = mn;
        for (size_t k = 1; k < n; ++k) {
          const std::string_view s = c.Str(k);
          if (BytesLess(s, mn)) mn = s;
          if (BytesLess(mx, s)) mx = s;
        }
        if (mn.size() > kMaxStatBytes || mx.size() > kMaxStatBytes) return st;
        lo.assign(mn);
        hi.assign(mx);
      }
    }
    st.__set_min_value(lo);
    st.__set_max_value(hi);
    return st;
  }

  // Encodes column `c`'s buffered rows as one column chunk appended to *out.
  Status WriteChunk(const Column& c, std::string* out, pf::ColumnChunk* chunk) {
    const int64_t chunk_start = out_base + static_cast<int64_t>(out->size());
    int64_t uncompressed = 0, compressed_total = 0;
    const bool byte_array = c.type == Type::kString || c.type == Type::kBytes;
    const bool use_dict = options.dictionary && byte_array && BuildDictionary(c);
    pf::ColumnMetaData md;
    if (use_dict) {
      md.__set_dictionary_page_offset(chunk_start);
      body.clear();
      for (uint32_t k : dict) {
        const std::string_view s = c.Str(k);
        AppendLE(static_cast<uint32_t>(s.size()), &body);
        body.append(s);
      }
      pf::PageHeader h;
      h.__set_type(pf::PageType::DICTIONARY_PAGE);
      pf::DictionaryPageHeader dh;
      dh.__set_num_values(static_cast<int32_t>(dict.size()));
      dh.__set_encoding(pf::Encoding::PLAIN);
      h.__set_dictionary_page_header(dh);
      WEIR_RETURN_IF_ERROR(EmitPage(h, out, &uncompressed, &compressed_total));
    }
    md.__set_data_page_offset(out_base + static_cast<int64_t>(out->size()));
    const int width = use_dict ? BitWidth(dict.size() - 1) : 0;

    // Pages by rows: a page ends once its values' plain size reaches page_size.
    const size_t nrows = c.defs.size();
    size_t row = 0, value = 0;
    while (row < nrows) {
      const size_t row0 = row, value0 = value;
      int64_t page_bytes = 0;
      while (row < nrows && page_bytes < options.page_size) {
        if (c.defs[row]) {
          switch (c.type) {
            case Type::kBool:
              page_bytes += 1;
              break;
            case Type::kString:
            case Type::kBytes:
              page_bytes += 4 + (c.offsets[value + 1] - c.offsets[value]);
              break;
            default:
              page_bytes += 8;
          }
          ++value;
        }
        ++row;
      }
      body.clear();
      levels.clear();
      AppendRleHybrid(c.defs.data() + row0, row - row0, 1, &levels);
      AppendLE(static_cast<uint32_t>(levels.size()), &body);
      body.append(levels);
      if (use_dict) {
        body.push_back(static_cast<char>(width));
        AppendRleHybrid(indices.data() + value0, value - value0, width, &body);
      } else {
        AppendPlain(c, value0, value);
      }
      pf::PageHeader h;
      h.__set_type(pf::PageType::DATA_PAGE);
      pf::DataPageHeader dh;
      dh.__set_num_values(static_cast<int32_t>(row - row0));
      dh.__set_encoding(use_dict ? pf::Encoding::RLE_DICTIONARY : pf::Encoding::PLAIN);
      dh.__set_definition_level_encoding(pf::Encoding::RLE);
      dh.__set_repetition_level_encoding(pf::Encoding::RLE);
      h.__set_data_page_header(dh);
      WEIR_RETURN_IF_ERROR(EmitPage(h, out, &uncompressed, &compressed_total));
    }

    md.__set_type(PhysicalType(c.type));
    std::vector<pf::Encoding::type> encodings{pf::Encoding::RLE};
    encodings.push_back(use_dict ? pf::Encoding::RLE_DICTIONARY : pf::Encoding::PLAIN);
    if (use_dict) encodings.push_back(pf::Encoding::PLAIN);  // the dictionary page
    md.__set_encodings(encodings);
    md.__set_path_in_schema({c.name});
    md.__set_codec(Codec(options.compression));
    md.__set_num_values(static_cast<int64_t>(nrows));
    md.__set_total_uncompressed_size(uncompressed);
    md.__set_total_compressed_size(compressed_total);
    md.__set_statistics(Stats(c));
    chunk->__set_file_offset(chunk_start);
    chunk->__set_meta_data(md);
    return Status::Ok();
  }
};

ParquetFileWriter::ParquetFileWriter(const Schema& schema, const ParquetOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->options.page_size = std::max<int64_t>(options.page_size, 1024);
  impl_->columns.resize(schema.size());
  for (size_t i = 0; i < schema.size(); ++i) {
    impl_->columns[i].name = schema.field(i).name;
    impl_->columns[i].type = schema.field(i).type;
    impl_->columns[i].Clear();
  }
}

ParquetFileWriter::~ParquetFileWriter() = default;

void ParquetFileWriter::Append(const Row& row) {
  Impl& m = *impl_;
  int64_t bytes = 0;
  for (size_t i = 0; i < m.columns.size(); ++i) {
    Column& c = m.columns[i];
    const Value& v = row[i];
    if (v.is_null()) {
      c.defs.push_back(0);
      continue;
    }
    c.defs.push_back(1);
    switch (c.type) {
      case Type::kBool:
        c.bools.push_back(v.b ? 1 : 0);
        bytes += 1;
        break;
      case Type::kInt64:
      case Type::kTimestamp:
        c.ints.push_back(v.i);
        bytes += 8;
        break;
      case Type::kDouble:
        c.doubles.push_back(v.d);
        bytes += 8;
        break;
      default:
        c.bytes.append(v.s);
        c.offsets.push_back(static_cast<uint32_t>(c.bytes.size()));
        bytes += 4 + static_cast<int64_t>(v.s.size());
        c.plain_bytes += 4 + static_cast<int64_t>(v.s.size());
    }
  }
  m.buffered_bytes += bytes;
  ++m.buffered_rows;
  ++m.rows;
}

int64_t ParquetFileWriter::buffered_rows() const {
  return impl_->buffered_rows;
}
int64_t ParquetFileWriter::buffered_bytes() const {
  return impl_->buffered_bytes;
}
int64_t ParquetFileWriter::rows() const {
  return impl_->rows;
}
int64_t ParquetFileWriter::written_bytes() const {
  return impl_->written;
}

Status ParquetFileWriter::FlushRowGroup(std::string* out) {
  Impl& m = *impl_;
  if (m.finished) return Status::FailedPrecondition("parquet: the file is finished");
  const size_t out_start = out->size();
  if (m.written == 0) out->append(kMagic, 4);
  if (m.buffered_rows > 0) {
    // A string column's offsets are 32-bit: the caller's row group bound keeps them far below
    // 4 GiB, and this refuses rather than wraps if one is not.
    for (const Column& c : m.columns) {
      if (c.bytes.size() > std::numeric_limits<uint32_t>::max() / 2) {
        return Status::ResourceExhausted("parquet: column '" + c.name + "' holds " +
                                         std::to_string(c.bytes.size()) +
                                         " bytes in one row group (limit 2 GiB)");
      }
    }
    pf::RowGroup rg;
    std::vector<pf::ColumnChunk> chunks(m.columns.size());
    m.out_base = m.written - static_cast<int64_t>(out_start);
    const int64_t rg_start = m.out_base + static_cast<int64_t>(out->size());
    int64_t total_uncompressed = 0, total_compressed = 0;
    for (size_t i = 0; i < m.columns.size(); ++i) {
      Status st = m.WriteChunk(m.columns[i], out, &chunks[i]);
      if (!st.ok()) {
        out->resize(out_start);
        return st;
      }
      total_uncompressed += chunks[i].meta_data.total_uncompressed_size;
      total_compressed += chunks[i].meta_data.total_compressed_size;
    }
    rg.__set_columns(chunks);
    rg.__set_num_rows(m.buffered_rows);
    rg.__set_total_byte_size(total_uncompressed);
    rg.__set_total_compressed_size(total_compressed);
    rg.__set_file_offset(rg_start);
    rg.__set_ordinal(static_cast<int16_t>(std::min<size_t>(m.row_groups.size(), 32767)));
    m.row_groups.push_back(std::move(rg));
    for (Column& c : m.columns) c.Clear();
    m.buffered_rows = 0;
    m.buffered_bytes = 0;
  }
  m.written += static_cast<int64_t>(out->size() - out_start);
  return Status::Ok();
}

void ParquetFileWriter::Reset() {
  Impl& m = *impl_;
  for (Column& c : m.columns) c.Clear();
  m.buffered_rows = 0;
  m.buffered_bytes = 0;
  m.rows = 0;
  m.written = 0;
  m.finished = false;
  m.row_groups.clear();
}

Status ParquetFileWriter::Finish(std::string* out) {
  Impl& m = *impl_;
  WEIR_RETURN_IF_ERROR(FlushRowGroup(out));
  m.finished = true;
  pf::FileMetaData fmd;
  fmd.__set_version(2);
  std::vector<pf::SchemaElement> schema(m.columns.size() + 1);
  schema[0].__set_name("schema");
  schema[0].__set_num_children(static_cast<int32_t>(m.columns.size()));
  std::vector<pf::ColumnOrder> orders(m.columns.size());
  for (size_t i = 0; i < m.columns.size(); ++i) {
    const Column& c = m.columns[i];
    pf::SchemaElement& e = schema[i + 1];
    e.__set_name(c.name);
    e.__set_type(PhysicalType(c.type));
    e.__set_repetition_type(pf::FieldRepetitionType::OPTIONAL);
    if (c.type == Type::kString) {
      e.__set_converted_type(pf::ConvertedType::UTF8);
      pf::LogicalType lt;
      lt.__set_STRING(pf::StringType());
      e.__set_logicalType(lt);
    } else if (c.type == Type::kTimestamp) {
      // Weir's timestamps are milliseconds since the epoch, UTC: stored as they are.
      e.__set_converted_type(pf::ConvertedType::TIMESTAMP_MILLIS);
      pf::TimeUnit unit;
      unit.__set_MILLIS(pf::MilliSeconds());
      pf::TimestampType ts;
      ts.__set_isAdjustedToUTC(true);
      ts.__set_unit(unit);
      pf::LogicalType lt;
      lt.__set_TIMESTAMP(ts);
      e.__set_logicalType(lt);
    }
    orders[i].__set_TYPE_ORDER(pf::TypeDefinedOrder());
  }
  fmd.__set_schema(schema);
  fmd.__set_num_rows(m.rows);
  fmd.__set_row_groups(m.row_groups);
  fmd.__set_created_by("weir version 0.1.0");
  fmd.__set_column_orders(orders);
  const size_t before = out->size();
  m.Serialize(fmd, out);
  AppendLE(static_cast<uint32_t>(out->size() - before), out);
  out->append(kMagic, 4);
  m.written += static_cast<int64_t>(out->size() - before);
  return Status::Ok();
}

}  // namespace weir
