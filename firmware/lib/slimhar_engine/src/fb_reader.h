// A bounds-checked reader for the few FlatBuffers constructs a TFLite model uses (tables with
// vtables, vectors of scalars, vectors of tables). Every access is checked against the buffer;
// a bad offset makes the access fail (returns false / the default), never reads outside.
#pragma once
#include <cstdint>
#include <cstring>

namespace slimhar {
namespace fb {

inline uint16_t Rd16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t Rd32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

struct Buf {
  const uint8_t* d;
  uint32_t n;
  bool Has(uint32_t pos, uint32_t len) const { return pos <= n && len <= n - pos; }
};

// A table: its position and its vtable, both checked.
struct Table {
  uint32_t pos = 0, vt = 0;
  uint16_t vt_size = 0, t_size = 0;
};

// A vector: element count and the position of element 0.
struct Vec {
  uint32_t len = 0, pos = 0;
};

inline bool TableAt(const Buf& b, uint32_t pos, Table* t) {
  if (!b.Has(pos, 4)) return false;
  const int32_t soff = int32_t(Rd32(b.d + pos));
  const int64_t vt = int64_t(pos) - soff;
  if (vt < 0 || !b.Has(uint32_t(vt), 4)) return false;
  const uint16_t vsz = Rd16(b.d + vt), tsz = Rd16(b.d + vt + 2);
  if (vsz < 4 || (vsz & 1) || !b.Has(uint32_t(vt), vsz) || tsz < 4 || !b.Has(pos, tsz)) return false;
  *t = Table{pos, uint32_t(vt), vsz, tsz};
  return true;
}

// Position of field `id` holding `size` bytes, 0 when absent; false when it lies outside the table.
inline bool Field(const Buf& b, const Table& t, int id, uint32_t size, uint32_t* at) {
  const uint32_t slot = 4u + 2u * uint32_t(id);
  *at = 0;
  if (slot + 2 > t.vt_size) return true;  // older writer: field absent
  const uint16_t fo = Rd16(b.d + t.vt + slot);
  if (fo == 0) return true;
  if (fo < 4 || uint32_t(fo) + size > t.t_size) return false;
  *at = t.pos + fo;
  return true;
}

template <typename T>
inline bool Scalar(const Buf& b, const Table& t, int id, T dflt, T* out) {
  uint32_t at;
  if (!Field(b, t, id, sizeof(T), &at)) return false;
  if (at == 0) {
    *out = dflt;
  } else {
    std::memcpy(out, b.d + at, sizeof(T));  // little-endian hosts and targets only
  }
  return true;
}

// Follow the uoffset in field `id`; *present = false when the field is absent.
inline bool Ref(const Buf& b, const Table& t, int id, uint32_t* target, bool* present) {
  uint32_t at;
  *present = false;
  if (!Field(b, t, id, 4, &at)) return false;
  if (at == 0) return true;
  const uint64_t tg = uint64_t(at) + Rd32(b.d + at);
  if (tg >= b.n) return false;
  *target = uint32_t(tg);
  *present = true;
  return true;
}

inline bool SubTable(const Buf& b, const Table& t, int id, Table* out, bool* present) {
  uint32_t tg;
  if (!Ref(b, t, id, &tg, present)) return false;
  return !*present || TableAt(b, tg, out);
}

// A vector of `elem`-byte elements; an absent field is an empty vector.
inline bool Vector(const Buf& b, const Table& t, int id, uint32_t elem, Vec* out) {
  uint32_t tg;
  bool present;
  *out = Vec{};
  if (!Ref(b, t, id, &tg, &present)) return false;
  if (!present) return true;
  if (!b.Has(tg, 4)) return false;
  const uint32_t len = Rd32(b.d + tg);
  if (!b.Has(tg + 4, 0) || uint64_t(len) * elem > b.n - (tg + 4)) return false;
  *out = Vec{len, tg + 4};
  return true;
}

// Element i of a vector of tables.
inline bool VecTable(const Buf& b, const Vec& v, uint32_t i, Table* out) {
  if (i >= v.len) return false;
  const uint32_t at = v.pos + 4 * i;
  const uint64_t tg = uint64_t(at) + Rd32(b.d + at);
  return tg < b.n && TableAt(b, uint32_t(tg), out);
}

inline int32_t VecI32(const Buf& b, const Vec& v, uint32_t i) { return int32_t(Rd32(b.d + v.pos + 4 * i)); }
inline float VecF32(const Buf& b, const Vec& v, uint32_t i) {
  const uint32_t u = Rd32(b.d + v.pos + 4 * i);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline int64_t VecI64(const Buf& b, const Vec& v, uint32_t i) {
  return int64_t(uint64_t(Rd32(b.d + v.pos + 8 * i)) | (uint64_t(Rd32(b.d + v.pos + 8 * i + 4)) << 32));
}

}  // namespace fb
}  // namespace slimhar
