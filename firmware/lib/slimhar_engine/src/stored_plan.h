// A subnet's stored plan (docs/blob-format.md "Stored plan", written by quantize/plan.py):
// decoded into a Plan, and compared with the plan Prepare computed from the flatbuffer.
// Internal to the engine (engine.h PlanProofs is the API).
#pragma once
#include <cstdint>

#include "engine.h"

namespace slimhar {
namespace stored {

// A subnet's first stored plan (made with no RAM limit), or the one that follows it in the blob,
// made for the blob's least-RAM arena (SubnetInfo::least_plan).
enum class Which : uint8_t { kFirst, kLeastRam };

// Decodes that stored plan of `sub` into `plan` (header and op records). Every field read stays
// inside the plan's bytes and every pointer formed stays inside the blob (pool tensor, the
// subnet's flatbuffer, its multiplier table); anything else is kBadModel. Decoding does NOT make
// a plan safe to run: only a proven one is used (PrepareSubnet).
EngineStatus Decode(const Blob& blob, const SubnetInfo& sub, Which which, Plan* plan);

// Whether that stored plan of `sub` decodes to exactly `computed` (every header field and every
// field of every op record), decoding one op at a time (no second plan's storage needed).
bool SameAs(const Blob& blob, const SubnetInfo& sub, Which which, const Plan& computed);

}  // namespace stored
}  // namespace slimhar
