// One interface for every inertial sensor the firmware reads: configure the rate and full
// scales, start, read the FIFO into samples in physical units, count overruns. Samples are
// acc x y z in g and gyro x y z in rad/s -- the units of the hapt-uci recordings -- in the
// sensor's own axes (the board's axis / sign table maps them onto the model's channels).
#pragma once
#include <cstdint>

namespace slimhar {
namespace imu {

enum class Status : uint8_t {
  kOk = 0,
  kBus,          // the bus transfer failed (no ACK, timeout)
  kWrongId,      // WHO_AM_I is not the part's
  kBadConfig,    // a rate or full scale the part cannot do
  kNotStarted,
};
const char* StatusName(Status s);

struct Config {
  float rate_hz = 52.0f;      // the part picks its nearest supported rate at or above
  uint16_t accel_fs_g = 4;    // +-2, 4, 8, 16 g
  uint16_t gyro_fs_dps = 2000;  // +-125, 250, 500, 1000, 2000 dps
  uint16_t watermark = 32;    // samples (acc + gyro pairs) in the FIFO that raise the interrupt
};

struct Sample {
  float acc[3];   // g
  float gyro[3];  // rad/s
};

class Imu {
 public:
  virtual ~Imu() = default;
  virtual Status Begin() = 0;                       // probe (WHO_AM_I) and reset
  virtual Status Configure(const Config& cfg) = 0;
  virtual Status Start() = 0;                       // FIFO streaming on
  // Up to `max` complete samples from the FIFO; *n how many. Partial pairs stay for the next call.
  virtual Status Read(Sample* out, uint32_t max, uint32_t* n) = 0;
  virtual float rate_hz() const = 0;                // the rate actually configured
  virtual uint32_t overruns() const = 0;            // FIFO overruns seen (data lost)
};

// The bus an IMU driver talks over: register reads and writes of one device address.
class I2cBus {
 public:
  virtual ~I2cBus() = default;
  virtual bool Write(uint8_t addr, uint8_t reg, const uint8_t* data, uint32_t n) = 0;
  virtual bool Read(uint8_t addr, uint8_t reg, uint8_t* data, uint32_t n) = 0;
};

}  // namespace imu
}  // namespace slimhar
