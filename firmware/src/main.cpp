// slimhar firmware (so far): validate the embedded blob and report it over the UART.
// The int8 engine, IMU drivers, policy and serial protocol come with the next issues.
#include "hal_mps2.h"
#include "slimhar_blob.h"
#include "slimhar_model.h"

#ifndef PIO_UNIT_TESTING
int main() {
  hal::UartInit();
  slimhar::Blob blob;
  const slimhar::BlobStatus st = blob.Open(slimhar_model, SLIMHAR_MODEL_SIZE);
  hal::Puts("slimhar: blob ");
  hal::Puts(slimhar::StatusName(st));
  if (st != slimhar::BlobStatus::kOk) {
    hal::Puts("\r\n");
    return 1;
  }
  hal::Puts(", ");
  hal::PutU(blob.subnet_count());
  hal::Puts(" subnets, ");
  hal::PutU(SLIMHAR_MODEL_SIZE);
  hal::Puts(" bytes\r\n");
  return 0;
}
#endif
