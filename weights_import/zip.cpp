#include "weights_import/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "engine/error.h"
#include "weights_import/byte_reader.h"

namespace shallow {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
// Deflate cannot expand data by more than about 1032:1; an entry claiming more is lying, and
// this bound keeps every allocation proportional to the archive's size.
constexpr uint64_t kMaxDeflateRatio = 1032;

// The end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes.
size_t find_end_of_central_dir(const FileBytes& a) {
  SH_CHECK(a.size >= 22, a.name, ": not a zip archive (", a.size, " bytes, too short for its directory)");
  const size_t lowest = a.size >= 22 + 65535 ? a.size - 22 - 65535 : 0;
  for (size_t pos = a.size - 22 + 1; pos-- > lowest;)
    if (ByteReader::little_endian(a.data + pos, 4) == kEndOfCentralDir &&
        pos + 22 + ByteReader::little_endian(a.data + pos + 20, 2) == a.size)
      return pos;
  throw Error(a.name + ": zip archive has no end-of-central-directory record (truncated?)");
}

// Reads the zip64 extra field of a central directory entry: the 64-bit values of the fields
// that the fixed header marked 0xFFFFFFFF, in the order size, compressed size, offset.
void read_zip64_extra(ByteReader extra, uint64_t* size, uint64_t* csize, uint64_t* offset) {
  while (extra.remaining() >= 4) {
    const uint16_t id = extra.u16("extra field id");
    const uint16_t len = extra.u16("extra field length");
    ByteReader field(extra.take(len, "extra field"), len, extra.name());
    if (id != kZip64ExtraId) continue;
    if (*size == 0xFFFFFFFF) *size = field.u64("zip64 size");
    if (*csize == 0xFFFFFFFF) *csize = field.u64("zip64 compressed size");
    if (*offset == 0xFFFFFFFF) *offset = field.u64("zip64 offset");
    return;
  }
}

}  // namespace

bool ZipReader::looks_like_zip(const uint8_t* data, size_t size) {
  return size >= 4 && ByteReader::little_endian(data, 4) == kLocalHeader;
}

ZipReader::ZipReader(FileBytes archive) : archive_(std::move(archive)) {
  const FileBytes& a = archive_;
  const size_t eocd = find_end_of_central_dir(a);
  ByteReader end(a.data + eocd, a.size - eocd, a.name + " (end of central directory)");
  end.take(4, "signature");
  const uint16_t disk = end.u16("disk number"), cd_disk = end.u16("directory disk");
  end.u16("entries on this disk");
  uint64_t count = end.u16("entry count");
  uint64_t cd_size = end.u32("directory size");
  uint64_t cd_offset = end.u32("directory offset");
  SH_CHECK(disk == 0 && cd_disk == 0, a.name, ": multi-part zip archives are not supported");

  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    // Zip64: a locator just before the record points to the 64-bit directory record.
    SH_CHECK(eocd >= 20, a.name, ": zip64 archive lacks its locator");
    ByteReader loc(a.data + eocd - 20, 20, a.name + " (zip64 locator)");
    SH_CHECK(loc.u32("signature") == kZip64Locator, a.name, ": zip64 locator signature is wrong");
    loc.u32("disk");
    const uint64_t record = loc.u64("zip64 record offset");
    SH_CHECK(record <= a.size, a.name, ": zip64 directory record offset ", record, " is past the end");
    ByteReader r(a.data + record, a.size - size_t(record), a.name + " (zip64 end of central directory)");
    SH_CHECK(r.u32("signature") == kZip64EndOfCentralDir, a.name, ": zip64 directory record signature is wrong");
    r.u64("record size");
    r.u16("version made by");
    r.u16("version needed");
    r.u32("disk");
    r.u32("directory disk");
    r.u64("entries on this disk");
    count = r.u64("entry count");
    cd_size = r.u64("directory size");
    cd_offset = r.u64("directory offset");
  }
  SH_CHECK(cd_offset <= a.size && cd_size <= a.size - cd_offset, a.name, ": central directory [", cd_offset, ", +",
           cd_size, ") lies outside the ", a.size, "-byte archive");
  SH_CHECK(count <= cd_size / 46, a.name, ": ", count, " entries cannot fit a ", cd_size, "-byte central directory");

  ByteReader cd(a.data + cd_offset, size_t(cd_size), a.name + " (central directory)");
  entries_.reserve(size_t(count));
  for (uint64_t i = 0; i < count; ++i) {
    SH_CHECK(cd.u32("entry signature") == kCentralHeader, a.name, ": central directory entry ", i,
             " has a wrong signature");
    cd.u16("version made by");
    cd.u16("version needed");
    const uint16_t flags = cd.u16("flags");
    Entry e;
    e.method = cd.u16("method");
    cd.u32("time and date");
    e.crc32 = cd.u32("crc32");
    e.compressed_size = cd.u32("compressed size");
    e.size = cd.u32("size");
    const uint16_t name_len = cd.u16("name length"), extra_len = cd.u16("extra length"),
                   comment_len = cd.u16("comment length");
    cd.u16("disk");
    cd.u16("internal attributes");
    cd.u32("external attributes");
    uint64_t local_offset = cd.u32("local header offset");
    e.name.assign(reinterpret_cast<const char*>(cd.take(name_len, "entry name")), name_len);
    read_zip64_extra(ByteReader(cd.take(extra_len, "extra field"), extra_len, cd.name()), &e.size,
                     &e.compressed_size, &local_offset);
    cd.take(comment_len, "entry comment");

    const std::string where = a.name + ": entry '" + e.name + "'";
    SH_CHECK((flags & 1) == 0, where, " is encrypted");
    SH_CHECK(e.method == 0 || e.method == 8, where, " uses compression method ", e.method,
             " (only stored and deflated entries are supported)");
    SH_CHECK(e.method != 0 || e.size == e.compressed_size, where, " is stored but its sizes differ (",
             e.compressed_size, " and ", e.size, ")");
    SH_CHECK(local_offset <= cd_offset, where, ": local header offset ", local_offset, " is past the directory");
    ByteReader local(a.data + local_offset, size_t(cd_offset - local_offset), where + " (local header)");
    SH_CHECK(local.u32("local header signature") == kLocalHeader, where, ": local header signature is wrong");
    local.take(22, "local header");
    const uint16_t local_name = local.u16("name length"), local_extra = local.u16("extra length");
    local.take(size_t(local_name) + local_extra, "local name and extra field");
    e.data_offset = local_offset + local.pos();
    SH_CHECK(e.compressed_size <= cd_offset - e.data_offset, where, ": its ", e.compressed_size,
             " bytes at offset ", e.data_offset, " run past the start of the central directory");
    SH_CHECK(e.method == 0 || e.size / kMaxDeflateRatio <= e.compressed_size, where, " claims to inflate ",
             e.compressed_size, " bytes to ", e.size);
    index_[e.name] = entries_.size();
    entries_.push_back(std::move(e));
  }
}

const ZipReader::Entry* ZipReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

FileBytes ZipReader::read(const Entry& e) const {
  const std::string where = archive_.name + ": " + e.name;
  if (e.method == 0) return archive_.slice(size_t(e.data_offset), size_t(e.size), where);

  // One byte beyond the declared size lets an over-long stream show itself.
  std::vector<uint8_t> out(size_t(e.size) + 1);
  z_stream z{};
  SH_CHECK(inflateInit2(&z, -MAX_WBITS) == Z_OK, where, ": cannot start the inflater");
  z.next_in = archive_.data + e.data_offset;
  uint64_t in_left = e.compressed_size, out_done = 0;
  int status = Z_OK;
  // zlib counts in 32-bit units: feed large entries in pieces.
  while (status == Z_OK) {
    const uInt in_chunk = uInt(std::min<uint64_t>(in_left, 1u << 30));
    const uInt out_chunk = uInt(std::min<uint64_t>(e.size + 1 - out_done, 1u << 30));
    z.avail_in = in_chunk;
    z.next_out = out.data() + out_done;
    z.avail_out = out_chunk;
    status = inflate(&z, Z_NO_FLUSH);
    in_left -= in_chunk - z.avail_in;
    out_done += out_chunk - z.avail_out;
    if (status == Z_OK && in_chunk == z.avail_in && out_chunk == z.avail_out) break;  // no progress
  }
  inflateEnd(&z);
  SH_CHECK(status == Z_STREAM_END, where, ": deflated data is corrupt or truncated");
  SH_CHECK(out_done == e.size, where, ": inflates to ", out_done, " bytes, not the ", e.size, " its header says");
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < e.size;) {
    const uInt n = uInt(std::min<uint64_t>(e.size - done, 1u << 30));
    crc = crc32(crc, out.data() + done, n);
    done += n;
  }
  SH_CHECK(uint32_t(crc) == e.crc32, where, ": CRC mismatch (the entry is corrupt)");
  out.resize(size_t(e.size));
  return bytes_in_memory(std::move(out), where);
}

// ---- writing

namespace {

void put16(std::string& s, uint16_t v) {
  for (int i = 0; i < 2; ++i) s.push_back(char(v >> (8 * i)));
}
void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char(v >> (8 * i)));
}
void put64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(char(v >> (8 * i)));
}
constexpr uint64_t k32 = 0xFFFFFFFF;

}  // namespace

void ZipWriter::add(const std::string& name, const std::vector<Part>& parts) {
  SH_CHECK(name.size() < 0xFFFF, path_, ": entry name too long");
  uint64_t size = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const Part& p : parts) {
    size += p.size;
    for (size_t done = 0; done < p.size;) {
      const uInt n = uInt(std::min<size_t>(p.size - done, 1u << 30));
      crc = crc32(crc, static_cast<const Bytef*>(p.data) + done, n);
      done += n;
    }
  }
  const uint64_t offset = out_.written();
  const bool zip64 = size >= k32;
  std::string h;
  put32(h, kLocalHeader);
  put16(h, zip64 ? 45 : 20);  // version needed
  put16(h, 0);                // flags
  put16(h, 0);                // stored
  put32(h, 0);                // time and date
  put32(h, uint32_t(crc));
  put32(h, zip64 ? uint32_t(k32) : uint32_t(size));
  put32(h, zip64 ? uint32_t(k32) : uint32_t(size));
  put16(h, uint16_t(name.size()));
  put16(h, zip64 ? 20 : 0);
  h += name;
  if (zip64) {
    put16(h, kZip64ExtraId);
    put16(h, 16);
    put64(h, size);
    put64(h, size);
  }
  out_.write(h);
  for (const Part& p : parts) out_.write(p.data, p.size);
  written_.push_back({name, uint32_t(crc), size, offset});
}

void ZipWriter::finish() {
  const uint64_t cd_offset = out_.written();
  std::string cd;
  for (const Written& w : written_) {
    const bool big_size = w.size >= k32, big_offset = w.offset >= k32;
    std::string extra;
    if (big_size || big_offset) {
      put16(extra, kZip64ExtraId);
      put16(extra, uint16_t((big_size ? 16 : 0) + (big_offset ? 8 : 0)));
      if (big_size) {
        put64(extra, w.size);
        put64(extra, w.size);
      }
      if (big_offset) put64(extra, w.offset);
    }
    put32(cd, kCentralHeader);
    put16(cd, 45);  // version made by
    put16(cd, extra.empty() ? 20 : 45);
    put16(cd, 0);
    put16(cd, 0);
    put32(cd, 0);
    put32(cd, w.crc32);
    put32(cd, big_size ? uint32_t(k32) : uint32_t(w.size));
    put32(cd, big_size ? uint32_t(k32) : uint32_t(w.size));
    put16(cd, uint16_t(w.name.size()));
    put16(cd, uint16_t(extra.size()));
    put16(cd, 0);  // comment
    put16(cd, 0);  // disk
    put16(cd, 0);  // internal attributes
    put32(cd, 0);  // external attributes
    put32(cd, big_offset ? uint32_t(k32) : uint32_t(w.offset));
    cd += w.name;
    cd += extra;
  }
  const uint64_t cd_size = cd.size();
  const bool zip64 = written_.size() >= 0xFFFF || cd_offset >= k32 || cd_size >= k32;
  if (zip64) {
    const uint64_t record = cd_offset + cd_size;
    put32(cd, kZip64EndOfCentralDir);
    put64(cd, 44);
    put16(cd, 45);
    put16(cd, 45);
    put32(cd, 0);
    put32(cd, 0);
    put64(cd, written_.size());
    put64(cd, written_.size());
    put64(cd, cd_size);
    put64(cd, cd_offset);
    put32(cd, kZip64Locator);
    put32(cd, 0);
    put64(cd, record);
    put32(cd, 1);
  }
  put32(cd, kEndOfCentralDir);
  put16(cd, 0);
  put16(cd, 0);
  put16(cd, zip64 ? 0xFFFF : uint16_t(written_.size()));
  put16(cd, zip64 ? 0xFFFF : uint16_t(written_.size()));
  put32(cd, zip64 ? uint32_t(k32) : uint32_t(cd_size));
  put32(cd, zip64 ? uint32_t(k32) : uint32_t(cd_offset));
  put16(cd, 0);
  out_.write(cd);
  out_.commit();
}

}  // namespace shallow
