// Cortex-M4F start-up for mps2-an386: vector table, .data copy, .bss zero, FPU on, C++
// constructors, main(), then semihosting exit with main's return value.
#include <cstdint>

#include "hal_mps2.h"

extern "C" {
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
void __libc_init_array();
int main();
void Reset_Handler();
void Default_Handler() { for (;;) { } }
// the board (board_mps2.cpp) overrides these; test programs keep the spinning default
void NMI_Handler() __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler() __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler() __attribute__((weak, alias("Default_Handler")));
void Uart0Rx_Handler() __attribute__((weak, alias("Default_Handler")));  // IRQ 0 on mps2-an386
}

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[18])() = {
    reinterpret_cast<void (*)()>(&_estack), Reset_Handler, NMI_Handler, HardFault_Handler,
    Default_Handler, Default_Handler, Default_Handler, nullptr, nullptr, nullptr, nullptr,
    Default_Handler, Default_Handler, nullptr, Default_Handler, SysTick_Handler,
    Uart0Rx_Handler, Default_Handler,  // IRQ 0: UART0 RX, IRQ 1: UART0 TX
};

extern "C" void SemihostExit(int code) {
  static uint32_t block[2];
  block[0] = 0x20026;  // ADP_Stopped_ApplicationExit
  block[1] = uint32_t(code);
  hal::SemihostCall(0x20, block);  // SYS_EXIT_EXTENDED: QEMU exits with `code`
  for (;;) { }
}

extern "C" void Reset_Handler() {
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88) |= (0xFu << 20);  // CP10/CP11: FPU on
  asm volatile("dsb\n isb");
  for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
  for (uint32_t* d = &_sbss; d < &_ebss;) *d++ = 0;
  __libc_init_array();
  SemihostExit(main());  // main: board_mps2.cpp (the app) or a test
}
