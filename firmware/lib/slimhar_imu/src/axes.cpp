#include "axes.h"

#include <cstring>

namespace slimhar {
namespace imu {
namespace {
constexpr AxisRow kIdentity[] = {
    {"acc_x", Sensor::kAcc, 0, 1},   {"acc_y", Sensor::kAcc, 1, 1},   {"acc_z", Sensor::kAcc, 2, 1},
    {"gyro_x", Sensor::kGyro, 0, 1}, {"gyro_y", Sensor::kGyro, 1, 1}, {"gyro_z", Sensor::kGyro, 2, 1},
};
}  // namespace

const AxisMap kIdentityAxes = {kIdentity, sizeof(kIdentity) / sizeof(kIdentity[0])};

bool RouteChannels(const AxisMap& map, const char* const* names, uint32_t n, Route* routes) {
  for (uint32_t i = 0; i < n; ++i) {
    bool found = false;
    for (uint32_t k = 0; k < map.n && !found; ++k) {
      const AxisRow& r = map.rows[k];
      if (r.channel == nullptr || std::strcmp(r.channel, names[i]) != 0) continue;
      if (r.axis > 2 || (r.sign != 1 && r.sign != -1)) return false;
      routes[i] = Route{r.sensor, r.axis, r.sign};
      found = true;
    }
    if (!found) return false;
  }
  return true;
}

void ToChannels(const Sample& s, const Route* routes, uint32_t n, float* raw) {
  for (uint32_t i = 0; i < n; ++i) {
    const float v = routes[i].sensor == Sensor::kAcc ? s.acc[routes[i].axis] : s.gyro[routes[i].axis];
    raw[i] = routes[i].sign < 0 ? -v : v;
  }
}

void FromChannels(const float* raw, const Route* routes, uint32_t n, Sample* s) {
  *s = Sample{};
  for (uint32_t i = 0; i < n; ++i) {
    const float v = routes[i].sign < 0 ? -raw[i] : raw[i];
    (routes[i].sensor == Sensor::kAcc ? s->acc : s->gyro)[routes[i].axis] = v;
  }
}

}  // namespace imu
}  // namespace slimhar
