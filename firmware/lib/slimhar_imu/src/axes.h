// How a board's IMU axes land on a model's raw channels: one table per board (its mounting),
// looked up by the channel names of the blob's input spec (acc_x ... gyro_z). A model whose raw
// channels are not all in the table cannot be fed from this IMU (only over the link).
#pragma once
#include <cstdint>

#include "imu.h"

namespace slimhar {
namespace imu {

enum class Sensor : uint8_t { kAcc = 0, kGyro = 1 };

struct AxisRow {
  const char* channel;  // the spec's raw channel name
  Sensor sensor;
  uint8_t axis;         // 0..2 of the sensor's x y z
  int8_t sign;          // +1 or -1
};

struct AxisMap {
  const AxisRow* rows;
  uint32_t n;
};

// x y z of the accelerometer and gyroscope as the driver returns them, onto acc_x .. gyro_z.
extern const AxisMap kIdentityAxes;

struct Route {
  Sensor sensor;
  uint8_t axis;
  int8_t sign;
};

// routes[i] for raw channel i named names[i]; false (routes untouched past the first miss) when
// a name is not in the map or a row is malformed.
bool RouteChannels(const AxisMap& map, const char* const* names, uint32_t n, Route* routes);
// One sample onto the raw channel vector, and back (a replayed channel vector into a sample;
// channels the model does not use stay 0). Sign flips are exact in float.
void ToChannels(const Sample& s, const Route* routes, uint32_t n, float* raw);
void FromChannels(const float* raw, const Route* routes, uint32_t n, Sample* s);

}  // namespace imu
}  // namespace slimhar
