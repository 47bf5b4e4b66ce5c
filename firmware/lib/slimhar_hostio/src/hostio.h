// Files, arguments and an instruction clock for host-driven programs (the engine check and
// benchmark): stdio on the host; ARM semihosting + SysTick on the emulated board (QEMU with
// -semihosting-config ... and -icount shift=0, where the SysTick counts 1 per 40 instructions).
#pragma once
#include <cstddef>
#include <cstdint>

namespace hostio {

using File = intptr_t;  // -1: not open
File Open(const char* path, bool write);
bool Read(File f, void* buf, size_t n);         // exactly n bytes
bool Write(File f, const void* buf, size_t n);
long Length(File f);
void Close(File f);
void Print(const char* s);                      // to stderr / the semihosting console

// argv of the program (semihosting: -semihosting-config ...,arg=prog,arg=a,...); at most `max`.
int Args(int argc, char** argv, const char** out, int max);

// Monotonic instruction count (board: SysTick x 40 under -icount shift=0; host: 0).
void ClockStart();
uint64_t Instructions();
bool ClockIsInstructions();

}  // namespace hostio
