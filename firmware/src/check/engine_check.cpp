// engine_check: runs subnets of a blob on int8 windows from a file and writes the outputs (and,
// on the emulated board, instruction counts) to another file. The engine tests and
// `slimhar bench engine` drive it, on the host and in QEMU (files over semihosting).
//
//   engine_check <model.blob | model.tflite> <inputs.bin> <outputs.bin>
//
// A standalone .tflite (weights in its own buffers, e.g. from `slimhar blob unpack`) is run as
// subnet 0 through PrepareModel; a blob's subnets through PrepareSubnet.
//
// inputs.bin  : "SHEI" u32 n_records, then per record: u32 subnet, u32 n_windows, u32 input_size,
//               u32 ram_limit (the subnet's Plan::ram_limit, 0: none; 1: its least arena + scratch),
//               n_windows x input_size int8 (already quantized with the subnet's input params)
// outputs.bin : "SHEO" u32 version=3, u32 n_records, char[16] kernel flavour,
//               u32 sizeof(Plan) (without its op records), u32 sizeof(OpPlan) (one op record),
//               u64 switch instructions (x1000 switches);
//               per record: u32 subnet, u32 status, u32 n_windows, u32 output_size,
//               u32 arena_bytes, u32 scratch_bytes, u32 macs, u32 prepare status,
//               u64 prepare instructions, u32 n_ops, u32 stored plan (0: none, 1: proven
//               identical to the computed plan, 2: differs), u64 instructions of a cold prepare
//               from the proven stored plan (0: none; the outputs then come from that plan),
//               n_ops x (u32 op kind, u32 multipliers' CRC,
//               u64 instructions of the op in the first window), then n_windows x output_size
//               int8, then u64 invoke instructions (sum over windows). The multipliers' CRC is
//               the CRC-32 of a CONV_2D / FULLY_CONNECTED op's requantization multipliers
//               (int32 LE, one per output channel) followed by its shifts (int8), as the plan
//               uses them -- computed by Prepare for a .tflite, read from the blob's table for
//               a blob (0 for other ops): the tests compare the two.
#include <cstring>

#include "engine.h"
#include "plan_cache.h"
#include "hostio.h"
#include "slimhar_blob.h"

namespace {

#if defined(__arm__)
#define BIG __attribute__((section(".bigbuf"), aligned(16)))
#else
#define BIG alignas(16)
#endif
constexpr uint32_t kMaxBlob = 3u << 20;
constexpr uint32_t kArena = 160u << 10;
constexpr uint32_t kQuant = 4096;
BIG uint8_t g_blob[kMaxBlob];
alignas(16) uint8_t g_arena[kArena];
int32_t g_mult[kQuant];
int8_t g_shift[kQuant];
slimhar::FullPlan g_plan;
slimhar::PlanProofs g_proofs;
uint64_t g_op_instr[slimhar::kMaxOps];
uint64_t g_op_t0;

void OnOp(uint32_t k, void*) {
  const uint64_t now = hostio::Instructions();
  g_op_instr[k] = now - g_op_t0;
  g_op_t0 = now;
}

void PutU32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }
void PutU64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i)); }
uint32_t MultCrc(const slimhar::OpPlan& op) {
  const slimhar::ChannelQuant* q = slimhar::QuantOf(op);
  if (q == nullptr) return 0;
  uint8_t m[4];
  uint32_t crc = 0;
  for (uint32_t o = 0; o < op.out.c; ++o) {
    PutU32(m, uint32_t(q->mult[o]));
    crc = slimhar::Crc32(m, 4, crc);
  }
  return slimhar::Crc32(reinterpret_cast<const uint8_t*>(q->shift), op.out.c, crc);
}
uint32_t GetU32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }

int Fail(const char* what) {
  hostio::Print("engine_check: ");
  hostio::Print(what);
  hostio::Print("\n");
  return 2;
}

// Switching between two prepared subnets, the way firmware does it: PlanCache::Get on a cached
// subnet (a lookup, no weight copied). Measured over 1000 alternating switches.
slimhar::FullPlan g_slots[2];
slimhar::Plan* const g_slot_ptrs[2] = {&g_slots[0], &g_slots[1]};
int32_t g_slot_mult[2 * 1024];
int8_t g_slot_shift[2 * 1024];
uint64_t SwitchCost(const slimhar::Blob& blob) {
  slimhar::PlanCache cache(g_slot_ptrs, 2, g_slot_mult, g_slot_shift, 1024);
  const uint32_t a = 0, b = blob.subnet_count() - 1;
  if (!cache.Get(blob, a) || !cache.Get(blob, b)) return 0;
  const slimhar::Plan* volatile active = nullptr;
  const uint64_t t0 = hostio::Instructions();
  for (uint32_t i = 0; i < 1000; ++i) active = cache.Get(blob, (i & 1u) ? a : b);
  (void)active;
  return hostio::Instructions() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* args[4];
  if (hostio::Args(argc, argv, args, 4) != 4) return Fail("usage: engine_check <blob> <inputs.bin> <outputs.bin>");
  hostio::ClockStart();
  hostio::File fb = hostio::Open(args[1], false);
  if (fb == -1) return Fail("cannot open the blob");
  const long n = hostio::Length(fb);
  if (n <= 0 || uint32_t(n) > kMaxBlob || !hostio::Read(fb, g_blob, size_t(n))) return Fail("cannot read the blob");
  hostio::Close(fb);
  slimhar::Blob blob;
  const bool standalone = n >= 8 && std::memcmp(g_blob + 4, "TFL3", 4) == 0;
  if (!standalone) {
    const slimhar::BlobStatus bs = blob.Open(g_blob, size_t(n));
    if (bs != slimhar::BlobStatus::kOk) return Fail(slimhar::StatusName(bs));
  }

  hostio::File fi = hostio::Open(args[2], false), fo = hostio::Open(args[3], true);
  if (fi == -1 || fo == -1) return Fail("cannot open the input or output file");
  uint8_t h[64] = {};
  if (!hostio::Read(fi, h, 8) || std::memcmp(h, "SHEI", 4) != 0) return Fail("inputs.bin: bad header");
  const uint32_t n_rec = GetU32(h + 4);

  slimhar::QuantStore store{g_mult, g_shift, kQuant};
  const uint64_t sw = standalone ? 0 : SwitchCost(blob);  // between the first and last subnet
  std::memset(h, 0, sizeof(h));
  std::memcpy(h, "SHEO", 4);
  PutU32(h + 4, 3);
  PutU32(h + 8, n_rec);
  std::strncpy(reinterpret_cast<char*>(h + 12), slimhar::KernelFlavour(), 15);
  PutU32(h + 28, sizeof(slimhar::Plan));
  PutU32(h + 32, sizeof(slimhar::OpPlan));
  PutU64(h + 36, sw);
  if (!hostio::Write(fo, h, 44)) return Fail("cannot write outputs");

  for (uint32_t r = 0; r < n_rec; ++r) {
    if (!hostio::Read(fi, h, 16)) return Fail("inputs.bin: truncated");
    const uint32_t subnet = GetU32(h), n_win = GetU32(h + 4), in_size = GetU32(h + 8);
    // other DSP tiles under a limit, the same bits (tests/test_engine.py, `slimhar bench engine --least-ram`)
    g_plan.ram_limit = GetU32(h + 12);
    store.used = 0;
    const uint64_t t0 = hostio::Instructions();
    slimhar::EngineStatus st = standalone ? (subnet == 0 ? slimhar::PrepareModel(g_blob, uint32_t(n), &g_plan, &store)
                                                         : slimhar::EngineStatus::kBadArgs)
                                          : slimhar::PrepareSubnet(blob, subnet, &g_plan, &store, true, &g_proofs);
    const uint64_t t_prep = hostio::Instructions() - t0;
    const slimhar::Plan::StoredProof proof = g_plan.stored_proof;
    uint64_t t_stored = 0;
    if (st == slimhar::EngineStatus::kOk && proof == slimhar::Plan::StoredProof::kProven) {
      // the same subnet again, as a cold switch after its plan was evicted: from the stored plan
      store.used = 0;
      const uint64_t t2 = hostio::Instructions();
      st = slimhar::PrepareSubnet(blob, subnet, &g_plan, &store, true, &g_proofs);
      t_stored = hostio::Instructions() - t2;
      if (st == slimhar::EngineStatus::kOk && g_plan.source != slimhar::Plan::Source::kStored) return Fail("a proven stored plan was not used");
    }
    const slimhar::EngineStatus prepared = st;
    if (st == slimhar::EngineStatus::kOk && g_plan.input_size != in_size) st = slimhar::EngineStatus::kBadArgs;
    if (st == slimhar::EngineStatus::kOk && g_plan.arena_total() > kArena) st = slimhar::EngineStatus::kArenaTooSmall;
    const bool ok = st == slimhar::EngineStatus::kOk;
    const uint32_t out_size = ok ? g_plan.output_size : 0;
    uint64_t t_inv = 0;
    // the record header goes first; outputs follow window by window
    uint8_t rh[64] = {};
    PutU32(rh, subnet);
    PutU32(rh + 4, uint32_t(st));
    PutU32(rh + 8, ok ? n_win : 0);
    PutU32(rh + 12, out_size);
    // a prepared plan's sizes are reported even when it cannot run here (inputs of another
    // size, a plan larger than this program's arena): what Prepare asked for is the point
    const bool planned = prepared == slimhar::EngineStatus::kOk;
    PutU32(rh + 16, planned ? g_plan.arena_bytes : 0);
    PutU32(rh + 20, planned ? g_plan.scratch_bytes : 0);
    PutU32(rh + 24, planned ? g_plan.macs : 0);
    PutU32(rh + 28, uint32_t(prepared));
    PutU64(rh + 32, t_prep);
    PutU32(rh + 40, ok && n_win ? g_plan.n_ops : 0);
    PutU32(rh + 44, uint32_t(proof));
    PutU64(rh + 48, t_stored);
    // invoke instructions are only known at the end: write them in a trailer per record
    if (!hostio::Write(fo, rh, 64)) return Fail("cannot write outputs");
    for (uint32_t w = 0; w < n_win; ++w) {
      int8_t* x = ok ? slimhar::InputOf(g_plan, g_arena) : reinterpret_cast<int8_t*>(g_arena);
      if (in_size > kArena || !hostio::Read(fi, x, in_size)) return Fail("inputs.bin: truncated window");
      if (!ok) continue;
      // the first window also records a per-op profile (the hook adds a few instructions per op)
      const uint64_t t1 = hostio::Instructions();
      g_op_t0 = t1;
      const slimhar::EngineStatus si = slimhar::Invoke(g_plan, g_arena, kArena, w == 0 ? OnOp : nullptr, nullptr);
      t_inv += hostio::Instructions() - t1;
      if (w == 0) {  // the op table sits between the record header and the outputs
        uint8_t ob[16 * slimhar::kMaxOps] = {};
        for (uint32_t k = 0; k < g_plan.n_ops; ++k) {
          PutU32(ob + 16 * k, uint32_t(g_plan.ops[k].kind));
          PutU32(ob + 16 * k + 4, MultCrc(g_plan.ops[k]));
          PutU64(ob + 16 * k + 8, g_op_instr[k]);
        }
        if (!hostio::Write(fo, ob, 16 * g_plan.n_ops)) return Fail("cannot write outputs");
      }
      if (si != slimhar::EngineStatus::kOk) return Fail(slimhar::EngineStatusName(si));
      if (!hostio::Write(fo, slimhar::OutputOf(g_plan, g_arena), out_size)) return Fail("cannot write outputs");
    }
    uint8_t tr[8];
    PutU64(tr, t_inv);
    if (!hostio::Write(fo, tr, 8)) return Fail("cannot write outputs");
  }
  hostio::Close(fi);
  hostio::Close(fo);
  return 0;
}
