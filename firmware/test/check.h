// Minimal test reporting for the custom runner (test_custom_runner.py): one line per check,
// "TEST <name> PASS" or "TEST <name> FAIL <why>". On the emulated board lines go to the UART.
#pragma once
#include <cstdint>

#if defined(SLIMHAR_HOST_TEST)
#include <cstdio>
inline void TestOut(const char* s) { std::fputs(s, stdout); }
inline void TestInit() {}
#else
#include "hal_mps2.h"
inline void TestOut(const char* s) { hal::Puts(s); }
inline void TestInit() { hal::UartInit(); }
#endif

inline int g_failures = 0;
inline void Check(const char* name, bool ok, const char* why = "") {
  TestOut("TEST ");
  TestOut(name);
  TestOut(ok ? " PASS" : " FAIL ");
  if (!ok) TestOut(why);
  TestOut("\n");
  g_failures += !ok;
}
