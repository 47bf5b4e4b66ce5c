#include "hostio.h"

#include <cstring>

#if defined(__arm__)
#include "hal_mps2.h"

namespace hostio {
namespace {
enum : int { kOpen = 0x01, kClose = 0x02, kWrite0 = 0x04, kWrite = 0x05, kRead = 0x06, kFlen = 0x0C, kCmdline = 0x15 };

hal::SysTickClock g_clock;
}  // namespace

File Open(const char* path, bool write) {
  const uint32_t a[3] = {uint32_t(reinterpret_cast<uintptr_t>(path)), write ? 5u : 1u, uint32_t(std::strlen(path))};
  return hal::SemihostCall(kOpen, a);
}
bool Read(File f, void* buf, size_t n) {
  const uint32_t a[3] = {uint32_t(f), uint32_t(reinterpret_cast<uintptr_t>(buf)), uint32_t(n)};
  return hal::SemihostCall(kRead, a) == 0;
}
bool Write(File f, const void* buf, size_t n) {
  const uint32_t a[3] = {uint32_t(f), uint32_t(reinterpret_cast<uintptr_t>(buf)), uint32_t(n)};
  return hal::SemihostCall(kWrite, a) == 0;
}
long Length(File f) {
  const uint32_t a[1] = {uint32_t(f)};
  return hal::SemihostCall(kFlen, a);
}
void Close(File f) {
  const uint32_t a[1] = {uint32_t(f)};
  hal::SemihostCall(kClose, a);
}
void Print(const char* s) { hal::SemihostCall(kWrite0, s); }

int Args(int, char**, const char** out, int max) {
  static char line[512];
  uint32_t a[2] = {uint32_t(reinterpret_cast<uintptr_t>(line)), sizeof(line) - 1};
  if (hal::SemihostCall(kCmdline, a) != 0) return 0;
  line[a[1] < sizeof(line) ? a[1] : sizeof(line) - 1] = 0;
  int n = 0;
  for (char* p = line; *p && n < max;) {
    while (*p == ' ') *p++ = 0;
    if (!*p) break;
    out[n++] = p;
    while (*p && *p != ' ') ++p;
  }
  return n;
}

void ClockStart() { g_clock.Start(); }
uint64_t Instructions() { return g_clock.Ticks() * hal::SysTickClock::kInstructionsPerTick; }
bool ClockIsInstructions() { return true; }

}  // namespace hostio

#else  // host
#include <cstdio>

namespace hostio {
File Open(const char* path, bool write) {
  FILE* f = std::fopen(path, write ? "wb" : "rb");
  return f ? reinterpret_cast<File>(f) : -1;
}
bool Read(File f, void* buf, size_t n) { return std::fread(buf, 1, n, reinterpret_cast<FILE*>(f)) == n; }
bool Write(File f, const void* buf, size_t n) { return std::fwrite(buf, 1, n, reinterpret_cast<FILE*>(f)) == n; }
long Length(File f) {
  FILE* fp = reinterpret_cast<FILE*>(f);
  const long at = std::ftell(fp);
  std::fseek(fp, 0, SEEK_END);
  const long n = std::ftell(fp);
  std::fseek(fp, at, SEEK_SET);
  return n;
}
void Close(File f) { std::fclose(reinterpret_cast<FILE*>(f)); }
void Print(const char* s) { std::fputs(s, stderr); }
int Args(int argc, char** argv, const char** out, int max) {
  int n = 0;
  for (; n < argc && n < max; ++n) out[n] = argv[n];
  return n;
}
void ClockStart() {}
uint64_t Instructions() { return 0; }
bool ClockIsInstructions() { return false; }
}  // namespace hostio
#endif
