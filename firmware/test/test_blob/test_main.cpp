// The C++ blob reader on a real blob (exported from a trained BasicMotions checkpoint by
// `make firmware-blob`, embedded by firmware/scripts/embed_blob.py), and on damaged copies.
// Runs on the host (env host) and on the emulated Cortex-M4F (env mps2_an386).
#include <cstring>

#include "../check.h"
#include "slimhar_blob.h"
#include "slimhar_model.h"

using slimhar::Blob;
using slimhar::BlobStatus;

#if defined(SLIMHAR_HOST_TEST)
#include <vector>
// Damaged copies need a writable buffer as large as the blob: host only (256 KiB RAM on the board).
static uint32_t Rd32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
static void Wr32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }
static void ReCrc(std::vector<uint8_t>& b) {
  static const uint8_t z[4] = {0, 0, 0, 0};
  uint32_t c = slimhar::Crc32(b.data(), 16);
  c = slimhar::Crc32(z, 4, c);
  c = slimhar::Crc32(b.data() + 20, b.size() - 20, c);
  Wr32(b.data() + 16, c);
}
static BlobStatus OpenCopy(const std::vector<uint8_t>& b) { Blob x; return x.Open(b.data(), b.size()); }

static void DamagedCopies() {
  std::vector<uint8_t> good(slimhar_model, slimhar_model + SLIMHAR_MODEL_SIZE);
  Check("copy_opens", OpenCopy(good) == BlobStatus::kOk);
  auto b = good;
  b[b.size() / 2] ^= 0x40;
  Check("flipped_byte_is_bad_crc", OpenCopy(b) == BlobStatus::kBadCrc);
  b = good;
  b[0] = 'X';
  ReCrc(b);
  Check("bad_magic", OpenCopy(b) == BlobStatus::kBadMagic);
  b = good;
  b[8] = 9;
  ReCrc(b);
  Check("bad_version", OpenCopy(b) == BlobStatus::kBadVersion);
  b = good;
  Wr32(b.data() + 24, uint32_t(b.size()) + 4096);  // subnet table past the end
  ReCrc(b);
  Check("table_out_of_bounds", OpenCopy(b) == BlobStatus::kOutOfBounds);
  b = good;
  Wr32(b.data() + 24, Rd32(b.data() + 24) + 4);    // misaligned table
  ReCrc(b);
  Check("table_misaligned", OpenCopy(b) == BlobStatus::kMisaligned);
  b = good;
  const uint32_t dir = Rd32(b.data() + 32);
  Wr32(b.data() + dir + 28, 70000);                // absurd pool dim
  ReCrc(b);
  Check("absurd_pool_dim", OpenCopy(b) == BlobStatus::kBadPoolTensor);
  b = good;
  b.push_back(0);
  Check("padded_is_size_mismatch", OpenCopy(b) == BlobStatus::kSizeMismatch);
  // one field of the header, the subnet table or a reference made absurd, the CRC made right
  const uint32_t table = Rd32(good.data() + 24), n_pool = Rd32(good.data() + 28);
  const uint32_t ref0 = Rd32(good.data() + table + 44);   // subnet 0's references
  struct Case {
    const char* name;
    uint32_t at, value, bytes;
    BlobStatus want;
  };
  const uint32_t w2 = 0x40000000u;  // 2.0f: a width above 1
  // the input spec (tests/test_input_spec.py damages every field of a chain spec, on this reader too)
  const uint32_t spec = Rd32(good.data() + 44);
  const uint32_t spec_std = spec + 32 + 24u * (good[spec + 20] + good[spec + 21]) + 4u * good[spec + 21];
  // subnet 0's multiplier table: qn0 int32 multipliers, then qn0 int8 shifts
  const uint32_t qoff0 = Rd32(good.data() + table + 52), qn0 = Rd32(good.data() + table + 56);
  const uint32_t last = table + 64 * (Rd32(good.data() + 20) - 1);  // the last subnet's entry
  const Case cases[] = {
      {"bad_header_size", 10, 63, 2, BlobStatus::kBadHeaderSize},
      {"zero_subnets", 20, 0, 4, BlobStatus::kBadCounts},
      {"too_many_pool_tensors", 28, 300, 4, BlobStatus::kBadCounts},
      {"zero_axes", 58, 0, 2, BlobStatus::kBadShape},
      {"unknown_arch", 62, 5, 1, BlobStatus::kBadShape},
      {"window_too_long", 56, 9000, 2, BlobStatus::kBadShape},
      {"subnet_width_above_1", table, w2, 4, BlobStatus::kBadSubnet},
      {"subnet_resolution_above_window", table + 4, 9000, 2, BlobStatus::kBadSubnet},
      {"subnet_classes_differ", table + 6, 99, 2, BlobStatus::kBadSubnet},
      {"subnet_too_many_refs", table + 48, 65, 4, BlobStatus::kBadSubnet},
      {"subnet_model_misaligned", table + 36, Rd32(good.data() + table + 36) + 4, 4, BlobStatus::kMisaligned},
      {"subnet_model_out_of_bounds", table + 40, uint32_t(good.size()), 4, BlobStatus::kOutOfBounds},
      {"ref_to_missing_pool_tensor", ref0 + 2, n_pool, 2, BlobStatus::kBadRef},
      {"ref_slice_wider_than_tensor", ref0 + 4, 60000, 2, BlobStatus::kBadRef},
      {"ref_slice_empty", ref0 + 6, 0, 2, BlobStatus::kBadRef},
      {"version_1_refused", 8, 1, 2, BlobStatus::kBadVersion},
      {"version_2_refused", 8, 2, 2, BlobStatus::kBadVersion},  // its plans and sections lie elsewhere
      {"subnet_mults_misaligned", table + 52, Rd32(good.data() + table + 52) + 2, 4, BlobStatus::kMisaligned},
      {"subnet_mults_out_of_bounds", table + 52, uint32_t(good.size()) - 4, 4, BlobStatus::kOutOfBounds},
      {"subnet_too_many_mults", table + 56, 70000, 4, BlobStatus::kBadSubnet},
      {"subnet_stored_plan_out_of_bounds", table + 60, uint32_t(good.size()), 4, BlobStatus::kOutOfBounds},
      {"subnet_stored_plan_too_short", Rd32(good.data() + table + 60) + 2, 25, 2, BlobStatus::kOutOfBounds},
      {"subnet_stored_plan_past_the_end", Rd32(good.data() + table + 60) + 2, 0xFFFF, 2, BlobStatus::kOutOfBounds},
      {"subnet_unknown_entry_flag", table + 14, 2, 2, BlobStatus::kBadSubnet},
      // the last subnet's plan is the file's last section: a least-RAM plan said to follow it cannot
      {"subnet_least_ram_plan_past_the_end", last + 14, 1, 2, BlobStatus::kOutOfBounds},
      {"subnet_multiplier_below_2_30", qoff0, 5, 4, BlobStatus::kBadSubnet},
      {"subnet_multiplier_negative", qoff0, 0x80000000u, 4, BlobStatus::kBadSubnet},
      {"subnet_shift_past_30", qoff0 + 4 * qn0, 31, 1, BlobStatus::kBadSubnet},
      {"subnet_shift_below_minus_31", qoff0 + 4 * qn0, uint32_t(-32) & 0xFF, 1, BlobStatus::kBadSubnet},
      {"spec_out_of_bounds", 44, uint32_t(good.size()), 4, BlobStatus::kOutOfBounds},
      {"spec_bad_magic", spec, 'X', 1, BlobStatus::kBadSpec},
      {"spec_version_2", spec + 4, 2, 2, BlobStatus::kBadSpec},
      {"spec_size_differs", spec + 8, Rd32(good.data() + spec + 8) + 4, 4, BlobStatus::kBadSpec},
      {"spec_hop_zero", spec + 18, 0, 2, BlobStatus::kBadSpec},
      {"spec_channels_differ_from_header", spec + 21, 5, 1, BlobStatus::kBadSpec},
      {"spec_std_zero", spec_std, 0, 4, BlobStatus::kBadSpec},
  };
  for (const Case& c : cases) {
    b = good;
    for (uint32_t k = 0; k < c.bytes; ++k) b[c.at + k] = uint8_t(c.value >> (8 * k));
    ReCrc(b);
    const BlobStatus st = OpenCopy(b);
    Check(c.name, st == c.want, slimhar::StatusName(st));
  }
  // the least-RAM flag on an entry without a stored plan
  b = good;
  for (uint32_t k = 0; k < 4; ++k) b[last + 60 + k] = 0;
  b[last + 14] = 1;
  ReCrc(b);
  Check("subnet_least_ram_plan_without_a_plan", OpenCopy(b) == BlobStatus::kBadSubnet);
  // every single-byte truncation point of the header region: never kOk, never a crash
  bool all_refused = true;
  for (size_t n = 0; n < 256; ++n) all_refused &= (Blob().Open(good.data(), n) != BlobStatus::kOk);
  Check("truncations_refused", all_refused);
}
#endif

int main() {
  TestInit();
  const uint8_t digits[9] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  Check("crc32_check_value", slimhar::Crc32(digits, 9) == 0xCBF43926u);
  Blob blob;
  const BlobStatus st = blob.Open(slimhar_model, SLIMHAR_MODEL_SIZE);
  Check("real_blob_opens", st == BlobStatus::kOk, slimhar::StatusName(st));
  Check("has_subnets", blob.subnet_count() > 0 && blob.pool_count() > 0);
  bool models_ok = true, refs_ok = true;
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo s;
    models_ok &= blob.GetSubnet(i, &s) && s.model_size > 8 && std::memcmp(s.model + 4, "TFL3", 4) == 0 &&
                 s.classes == blob.classes() && s.resolution <= blob.window();
    for (uint32_t j = 0; j < s.n_refs; ++j) {
      slimhar::WeightRef r;
      slimhar::PoolTensor p;
      refs_ok &= blob.GetRef(s, j, &r) && blob.GetPoolTensor(r.pool, &p) && r.out <= p.dims[0] &&
                 r.in <= p.dims[p.rank - 1];
    }
  }
  Check("subnet_models_are_tflite", models_ok);
  Check("weight_refs_inside_pool", refs_ok);
  Check("truncated_refused", Blob().Open(slimhar_model, SLIMHAR_MODEL_SIZE - 16) == BlobStatus::kSizeMismatch);
  Check("null_refused", Blob().Open(nullptr, 0) == BlobStatus::kTooSmall);
  // the input spec the application feeds the model with (BasicMotions: its raw channels)
  const slimhar::InputSpec& sp = blob.spec();
  char name[25], unit[9];
  Check("spec_matches_header", sp.window == blob.window() && sp.n_channels == blob.axes() &&
                                   sp.n_classes == blob.classes() && sp.hop > 0 && sp.hop <= sp.window);
  Check("spec_names", blob.RawName(0, name, unit) && std::strcmp(name, "acc_x") == 0 &&
                          blob.ClassName(0, name) && std::strcmp(name, "Badminton") == 0 &&
                          !blob.ClassName(sp.n_classes, name));
  Check("spec_sample_rate", sp.sample_rate_hz == 10.0f && !sp.offline() && sp.n_stages == 0);
#if defined(SLIMHAR_HOST_TEST)
  DamagedCopies();
#endif
  return 0;   // failures are reported as TEST lines; a non-zero exit would mean a crash
}
