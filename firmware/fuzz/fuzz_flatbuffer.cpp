// libFuzzer target: the bounded flatbuffer reader (fb_reader.h) alone, on the input as a TFLite
// model: every table, vector and scalar the engine reads -- model, operator codes, subgraphs,
// tensors with their shapes and quantization, operators with their options, buffers -- walked
// without Prepare's semantic checks, so malformed offsets reach the reader itself.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fb_reader.h"

namespace {
namespace fb = slimhar::fb;
volatile uint32_t g_sink;

uint32_t Ints(const fb::Buf& b, const fb::Table& t, int id, uint32_t elem) {
  fb::Vec v;
  if (!fb::Vector(b, t, id, elem, &v)) return 0;
  uint32_t s = v.len;
  for (uint32_t i = 0; i < v.len && i < 64; ++i) s += uint32_t(elem == 8 ? fb::VecI64(b, v, i) : fb::VecI32(b, v, i));
  return s;
}

uint32_t Tables(const fb::Buf& b, const fb::Table& t, int id, uint32_t (*each)(const fb::Buf&, const fb::Table&)) {
  fb::Vec v;
  if (!fb::Vector(b, t, id, 4, &v)) return 0;
  uint32_t s = 0;
  for (uint32_t i = 0; i < v.len && i < 256; ++i) {
    fb::Table e;
    if (fb::VecTable(b, v, i, &e)) s += each(b, e);
  }
  return s;
}

uint32_t Tensor(const fb::Buf& b, const fb::Table& t) {
  int8_t type = 0;
  uint32_t buffer = 0;
  uint32_t s = Ints(b, t, 0, 4);
  if (fb::Scalar<int8_t>(b, t, 1, 0, &type) && fb::Scalar<uint32_t>(b, t, 2, 0, &buffer)) s += uint32_t(type) + buffer;
  fb::Table q;
  bool has = false;
  if (fb::SubTable(b, t, 4, &q, &has) && has) {
    int32_t dim = 0;
    s += Ints(b, q, 2, 4) + Ints(b, q, 3, 8);
    if (fb::Scalar<int32_t>(b, q, 6, 0, &dim)) s += uint32_t(dim);
  }
  return s;
}

uint32_t Operator(const fb::Buf& b, const fb::Table& t) {
  uint32_t code = 0, s = Ints(b, t, 1, 4) + Ints(b, t, 2, 4);
  uint8_t opt_type = 0;
  if (fb::Scalar<uint32_t>(b, t, 0, 0, &code) && fb::Scalar<uint8_t>(b, t, 3, 0, &opt_type)) s += code + opt_type;
  fb::Table o;
  bool has = false;
  if (fb::SubTable(b, t, 4, &o, &has) && has) {
    for (int id = 0; id < 8; ++id) {
      int32_t v = 0;
      if (fb::Scalar<int32_t>(b, o, id, 0, &v)) s += uint32_t(v);
    }
  }
  return s;
}

uint32_t Subgraph(const fb::Buf& b, const fb::Table& t) {
  return Tables(b, t, 0, Tensor) + Ints(b, t, 1, 4) + Ints(b, t, 2, 4) + Tables(b, t, 3, Operator);
}

uint32_t Code(const fb::Buf& b, const fb::Table& t) {
  int8_t dep = 0;
  int32_t code = 0;
  return fb::Scalar<int8_t>(b, t, 0, 0, &dep) && fb::Scalar<int32_t>(b, t, 3, 0, &code) ? uint32_t(dep) + uint32_t(code) : 0;
}

uint32_t Buffer(const fb::Buf& b, const fb::Table& t) {
  fb::Vec v;
  uint64_t ext = 0;
  uint32_t s = 0;
  if (fb::Vector(b, t, 0, 1, &v))
    for (uint32_t i = 0; i < v.len; i += 61) s += b.d[v.pos + i];
  if (fb::Scalar<uint64_t>(b, t, 1, 0, &ext)) s += uint32_t(ext);
  return s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> m(data, data + size);  // exact size: ASan sees any read past the end
  const fb::Buf b{m.data(), uint32_t(m.size())};
  fb::Table model;
  if (m.size() < 4 || !fb::TableAt(b, fb::Rd32(b.d), &model)) return 0;
  g_sink = Tables(b, model, 1, Code) + Tables(b, model, 2, Subgraph) + Tables(b, model, 4, Buffer);
  return 0;
}
