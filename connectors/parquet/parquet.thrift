// The part of the Parquet file format's metadata that Weir's writer produces: the file footer
// (FileMetaData) and the page headers, serialised with Thrift's compact protocol. Written for
// Weir from the Parquet format specification (apache/parquet-format, parquet.thrift and
// Encodings.md); the field ids and types are the specification's, which is what makes the
// bytes readable by every Parquet reader. Only what the writer sets is declared: a reader
// skips fields it does not know, and a writer need not declare fields it never sets.
// Compiled at build time with `thrift --gen cpp` (connectors/CMakeLists.txt).
namespace cpp weir.parquet_format

enum Type {
  BOOLEAN = 0
  INT32 = 1
  INT64 = 2
  INT96 = 3
  FLOAT = 4
  DOUBLE = 5
  BYTE_ARRAY = 6
  FIXED_LEN_BYTE_ARRAY = 7
}

// Legacy annotations, still set next to the logical type for older readers.
enum ConvertedType {
  UTF8 = 0
  TIMESTAMP_MILLIS = 9
  TIMESTAMP_MICROS = 10
}

enum FieldRepetitionType {
  REQUIRED = 0
  OPTIONAL = 1
  REPEATED = 2
}

enum Encoding {
  PLAIN = 0
  PLAIN_DICTIONARY = 2
  RLE = 3
  BIT_PACKED = 4
  RLE_DICTIONARY = 8
}

enum CompressionCodec {
  UNCOMPRESSED = 0
  SNAPPY = 1
  GZIP = 2
  ZSTD = 6
}

enum PageType {
  DATA_PAGE = 0
  INDEX_PAGE = 1
  DICTIONARY_PAGE = 2
  DATA_PAGE_V2 = 3
}

// min_value / max_value are PLAIN-encoded (byte arrays without their length prefix) and
// ordered as ColumnOrder says; max / min (ids 1, 2) are the deprecated signed-order pair.
struct Statistics {
  1: optional binary max
  2: optional binary min
  3: optional i64 null_count
  4: optional i64 distinct_count
  5: optional binary max_value
  6: optional binary min_value
}

struct StringType {}
struct MilliSeconds {}
struct MicroSeconds {}
struct NanoSeconds {}
union TimeUnit {
  1: MilliSeconds MILLIS
  2: MicroSeconds MICROS
  3: NanoSeconds NANOS
}
struct TimestampType {
  1: required bool isAdjustedToUTC
  2: required TimeUnit unit
}
union LogicalType {
  1: StringType STRING
  8: TimestampType TIMESTAMP
}

// One node of the schema tree, flattened depth first: the root (a group with num_children),
// then one leaf per column for a flat schema.
struct SchemaElement {
  1: optional Type type
  2: optional i32 type_length
  3: optional FieldRepetitionType repetition_type
  4: required string name
  5: optional i32 num_children
  6: optional ConvertedType converted_type
  10: optional LogicalType logicalType
}

struct DataPageHeader {
  1: required i32 num_values  // including nulls
  2: required Encoding encoding
  3: required Encoding definition_level_encoding
  4: required Encoding repetition_level_encoding
  5: optional Statistics statistics
}

struct DictionaryPageHeader {
  1: required i32 num_values
  2: required Encoding encoding
  3: optional bool is_sorted
}

struct PageHeader {
  1: required PageType type
  2: required i32 uncompressed_page_size  // not counting this header
  3: required i32 compressed_page_size
  4: optional i32 crc
  5: optional DataPageHeader data_page_header
  7: optional DictionaryPageHeader dictionary_page_header
}

struct KeyValue {
  1: required string key
  2: optional string value
}

struct ColumnMetaData {
  1: required Type type
  2: required list<Encoding> encodings
  3: required list<string> path_in_schema
  4: required CompressionCodec codec
  5: required i64 num_values
  6: required i64 total_uncompressed_size  // pages and their headers
  7: required i64 total_compressed_size
  9: required i64 data_page_offset
  11: optional i64 dictionary_page_offset
  12: optional Statistics statistics
}

struct ColumnChunk {
  1: optional string file_path  // unset: this file
  2: required i64 file_offset
  3: optional ColumnMetaData meta_data
}

struct RowGroup {
  1: required list<ColumnChunk> columns
  2: required i64 total_byte_size  // uncompressed
  3: required i64 num_rows
  5: optional i64 file_offset
  6: optional i64 total_compressed_size
  7: optional i16 ordinal
}

struct TypeDefinedOrder {}
union ColumnOrder {
  1: TypeDefinedOrder TYPE_ORDER
}

struct FileMetaData {
  1: required i32 version
  2: required list<SchemaElement> schema
  3: required i64 num_rows
  4: required list<RowGroup> row_groups
  5: optional list<KeyValue> key_value_metadata
  6: optional string created_by
  7: optional list<ColumnOrder> column_orders
}
