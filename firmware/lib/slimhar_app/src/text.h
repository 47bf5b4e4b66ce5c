// Text in and out of the serial protocol without printf or the heap: a fixed-capacity line
// writer (numbers in decimal, hex and fixed point) and strict token parsers that accept a whole
// token or nothing (no partial numbers, no overflow, no locale).
#pragma once
#include <cstddef>
#include <cstdint>

namespace slimhar {
namespace text {

class Line {
 public:
  static constexpr uint32_t kCap = 2048;  // a stats line of a 171-subnet blob, a 64-class result
  Line& Str(const char* s);
  Line& Ch(char c);
  Line& U(uint64_t v);
  Line& I(int64_t v);
  Line& Hex(uint32_t v, int digits = 8);
  Line& Fixed(float v, int decimals);  // -12.345; "nan" / "inf" spelled out
  const char* c_str() const { return buf_; }
  uint32_t size() const { return n_; }
  bool truncated() const { return truncated_; }
  void Clear() { n_ = 0; buf_[0] = 0; truncated_ = false; }

 private:
  char buf_[kCap + 1] = {};
  uint32_t n_ = 0;
  bool truncated_ = false;
};

// Whitespace-separated tokens of one line (at most kMax; more is reported by count()).
struct Tokens {
  static constexpr uint32_t kMax = 96;
  const char* tok[kMax];
  uint32_t len[kMax];
  uint32_t n = 0;        // tokens kept
  bool too_many = false;
  bool Is(uint32_t i, const char* word) const;
};
void Split(const char* line, uint32_t size, Tokens* t);

// Bytes from the serial link -> command lines. A line ends at LF, CR or '%' (MLPerf Tiny's
// runner ends its commands with '%'); a line longer than kCap is dropped up to its end and
// reported once.
class LineReader {
 public:
  static constexpr uint32_t kCap = 2048;  // a feed line of 8 samples x 16 axes fits
  enum Event { kNone, kLine, kOverlong };
  Event Push(char c);
  const char* line() const { return buf_; }
  uint32_t size() const { return n_; }

 private:
  char buf_[kCap + 1] = {};
  uint32_t n_ = 0;
  bool ready_ = false, overlong_ = false;
};

bool ParseU32(const char* s, uint32_t n, uint32_t* out);                  // decimal, no sign
bool ParseI32(const char* s, uint32_t n, int32_t* out);
bool ParseHex32(const char* s, uint32_t n, uint32_t* out);                // 1..8 hex digits
bool ParseFloat(const char* s, uint32_t n, float* out);                   // finite decimal: -12.5e-3
bool ParseHexBytes(const char* s, uint32_t n, uint8_t* out, uint32_t cap, uint32_t* count);

}  // namespace text
}  // namespace slimhar
