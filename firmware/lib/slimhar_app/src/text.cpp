#include "text.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace slimhar {
namespace text {

Line& Line::Ch(char c) {
  if (n_ < kCap) {
    buf_[n_++] = c;
    buf_[n_] = 0;
  } else {
    truncated_ = true;
  }
  return *this;
}

Line& Line::Str(const char* s) {
  while (*s) Ch(*s++);
  return *this;
}

Line& Line::U(uint64_t v) {
  char b[21];
  int i = 20;
  b[i] = 0;
  do {
    b[--i] = char('0' + v % 10);
    v /= 10;
  } while (v);
  return Str(&b[i]);
}

Line& Line::I(int64_t v) {
  if (v < 0) {
    Ch('-');
    return U(uint64_t(-(v + 1)) + 1u);
  }
  return U(uint64_t(v));
}

Line& Line::Hex(uint32_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) Ch("0123456789abcdef"[(v >> (4 * i)) & 0xFu]);
  return *this;
}

Line& Line::Fixed(float v, int decimals) {
  if (std::isnan(v)) return Str("nan");
  if (std::isinf(v)) return Str(v < 0 ? "-inf" : "inf");
  if (v < 0) {
    Ch('-');
    v = -v;
  }
  uint64_t scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  const double x = double(v) * double(scale) + 0.5;
  if (x >= 1.8e19) return Str("big");
  const uint64_t q = uint64_t(x);
  U(q / scale);
  if (decimals > 0) {
    Ch('.');
    const uint64_t f = q % scale;
    for (uint64_t d = scale / 10; d >= 1; d /= 10) {
      Ch(char('0' + (f / d) % 10));
      if (d == 1) break;
    }
  }
  return *this;
}

LineReader::Event LineReader::Push(char c) {
  if (ready_) {  // the previous line was handed out: start a new one
    n_ = 0;
    ready_ = false;
  }
  if (c == '\n' || c == '\r' || c == '%') {
    ready_ = true;
    buf_[n_] = 0;
    if (overlong_) {
      overlong_ = false;
      return kOverlong;
    }
    return kLine;
  }
  if (overlong_) return kNone;
  if (n_ == kCap) {
    overlong_ = true;
    n_ = 0;
    return kNone;
  }
  buf_[n_++] = c;
  return kNone;
}

bool Tokens::Is(uint32_t i, const char* word) const {
  return i < n && std::strlen(word) == len[i] && std::memcmp(tok[i], word, len[i]) == 0;
}

void Split(const char* s, uint32_t size, Tokens* t) {
  t->n = 0;
  t->too_many = false;
  uint32_t i = 0;
  while (i < size) {
    while (i < size && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= size) break;
    const uint32_t start = i;
    while (i < size && s[i] != ' ' && s[i] != '\t') ++i;
    if (t->n == Tokens::kMax) {
      t->too_many = true;
      return;
    }
    t->tok[t->n] = s + start;
    t->len[t->n] = i - start;
    ++t->n;
  }
}

bool ParseU32(const char* s, uint32_t n, uint32_t* out) {
  if (n == 0 || n > 10) return false;
  uint64_t v = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + uint32_t(s[i] - '0');
  }
  if (v > 0xFFFFFFFFu) return false;
  *out = uint32_t(v);
  return true;
}

bool ParseI32(const char* s, uint32_t n, int32_t* out) {
  const bool neg = n > 0 && s[0] == '-';
  uint32_t u;
  if (!ParseU32(s + neg, n - neg, &u) || u > (neg ? 0x80000000u : 0x7FFFFFFFu)) return false;
  *out = neg ? int32_t(-int64_t(u)) : int32_t(u);
  return true;
}

bool ParseHex32(const char* s, uint32_t n, uint32_t* out) {
  if (n == 0 || n > 8) return false;
  uint32_t v = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const char c = s[i];
    const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | uint32_t(d);
  }
  *out = v;
  return true;
}

// A finite decimal float, correctly rounded to float32 (strtof: the same value the host's
// float32 formatting round-trips to), whole token only: "1.5", "-2e-3"; no hex, inf or nan.
bool ParseFloat(const char* s, uint32_t n, float* out) {
  if (n == 0 || n > 47) return false;
  char b[48];
  for (uint32_t i = 0; i < n; ++i) {
    const char c = s[i];
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) return false;
    b[i] = c;
  }
  b[n] = 0;
  char* end = nullptr;
  const float v = std::strtof(b, &end);
  if (end != b + n || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool ParseHexBytes(const char* s, uint32_t n, uint8_t* out, uint32_t cap, uint32_t* count) {
  if (n == 0 || (n & 1u) || n / 2 > cap) return false;
  for (uint32_t i = 0; i < n; i += 2) {
    uint32_t v;
    if (!ParseHex32(s + i, 2, &v)) return false;
    out[i / 2] = uint8_t(v);
  }
  *count = n / 2;
  return true;
}

}  // namespace text
}  // namespace slimhar
