#include "app.h"

#include "battery.h"

#include <cmath>
#include <cstring>
#include <new>

namespace slimhar {
namespace {
using text::Line;
using text::Tokens;

void Name(Line& l, const SubnetInfo& s) {
  const uint32_t w = uint32_t(std::lround(double(s.width) * 100.0));
  l.Ch('w').Ch(char('0' + w / 100 % 10)).Ch(char('0' + w / 10 % 10)).Ch(char('0' + w % 10)).Str("_t").U(s.resolution);
}

void Flags(Line& l, uint8_t f, bool forced) {
  const char* names[] = {"switched", "nothing-fits", "critical", "skip"};
  bool any = false;
  for (int b = 0; b < 4; ++b) {
    if (f & (1u << b)) {
      l.Str(any ? "," : "").Str(names[b]);
      any = true;
    }
  }
  if (forced) {
    l.Str(any ? "," : "").Str("forced");
    any = true;
  }
  if (!any) l.Ch('-');
}
}  // namespace

bool App::Init(const uint8_t* blob, uint32_t blob_size, const AppMemory& mem, const BoardApi& board) {
  board_ = board;
  mem_ = mem;
  line_.Clear();
  const BlobStatus bs = blob_.Open(blob, blob_size);
  if (bs != BlobStatus::kOk) {
    Error("blob", StatusName(bs));
    return false;
  }
  const InputSpec& spec = blob_.spec();
  window_ = spec.window;
  hop_ = spec.hop;
  axes_ = blob_.axes();
  classes_ = blob_.classes();
  rate_mhz_ = uint32_t(std::lround(double(spec.sample_rate_hz) * 1000.0));  // (0, 1e8]: checked by Open
  if (rate_mhz_ == 0) rate_mhz_ = 1;
  hop_us_ = uint32_t(uint64_t(hop_) * 1000000000ull / rate_mhz_);
  chain_.Init(blob_);
  StartSensing();
  if (axes_ > kMaxAxes || classes_ > kMaxClasses || blob_.subnet_count() > kMaxSubnets ||
      mem.sample_capacity < window_ + hop_) {
    Error("blob", "larger than this firmware's limits (axes, classes, subnets or window)");
    return false;
  }
  for (uint32_t c = 0; c < axes_; ++c) {
    mean_[c] = blob_.norm_mean(c);
    std_[c] = blob_.norm_std(c);
  }
  ring_.Init(mem.samples, mem.sample_capacity, axes_);
  cache_ = new (cache_storage_) PlanCache(mem.slots, mem.n_slots, mem.mult, mem.shift, mem.channels_per_slot);
  // every subnet once: cold prepare, then a timed warm inference at the input zero point
  policy::Candidate all[kMaxSubnets];
  uint32_t n = 0;
  for (uint32_t i = 0; i < blob_.subnet_count(); ++i) {
    SubnetInfo s;
    blob_.GetSubnet(i, &s);
    const Plan* p = nullptr;
    uint64_t cyc = 0;
    // the subnet's first use prepares it from its flatbuffer and proves its stored plan; what a
    // cold switch costs later is a prepare after that, timed here
    uint64_t t_prep = 0;
    const Plan* prepared = nullptr;
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 1) cache_->Evict(i);
      t_prep = board_.cycles();
      EngineStatus es;
      if ((prepared = cache_->Get(blob_, i, &es)) == nullptr) {
        Error("engine", EngineStatusName(es));
        return false;
      }
    }
    const uint32_t prep_us = Us(board_.cycles() - t_prep);
    prepare_us_[i] = prep_us ? prep_us : 1;
    const uint32_t stored = prepared->source == Plan::Source::kStored ? 1u : 0u;
    plan_stored_[i / 32] = (plan_stored_[i / 32] & ~(1u << (i % 32))) | (stored << (i % 32));
    if (!Run(i, nullptr, &cyc, &p)) return false;
    latency_cycles_[i] = uint32_t(cyc > 0xFFFFFFFFu ? 0xFFFFFFFFu : cyc);
    latency_us_[i] = Us(cyc) ? Us(cyc) : 1;
    const float acc = s.int8_acc * 10000.0f;
    all[n++] = policy::Candidate{uint16_t(i), uint16_t(acc > 0 && acc < 10000.5f ? std::lround(acc) : 0), latency_us_[i]};
  }
  n_front_ = policy::ParetoFront(all, n, front_);
  next_end_ = window_;
  return true;
}

void App::Reply(Line& l) {
  board_.write(l.c_str());
  l.Clear();
}

void App::Ready() {
  line_.Str("m-ready");
  Reply(line_);
}

// `what` may point into line_ (a message built there): the error line has its own buffer
void App::Error(const char* what, const char* detail) {
  ++stats_.errors;
  err_.Clear();
  err_.Str("e-[").Str(what);
  if (detail) err_.Str(": ").Str(detail);
  err_.Str("]");
  Reply(err_);
  line_.Clear();
}

// The subnet `subnet` on `input` (null: the input zero point); its logits land in out_.
bool App::Run(uint32_t subnet, const int8_t* input, uint64_t* cycles, const Plan** plan_out) {
  EngineStatus es;
  const Plan* p = cache_->Get(blob_, subnet, &es);
  if (p == nullptr) {
    Error("engine", EngineStatusName(es));
    return false;
  }
  if (p->output_size > kMaxClasses || p->arena_total() > mem_.arena_bytes) {
    Error("engine", "subnet larger than this firmware's arena");
    return false;
  }
  int8_t* x = InputOf(*p, mem_.arena);
  if (input == x) {
    // a window's input is already in place (RunWindow quantizes straight into it)
  } else if (input) {
    std::memcpy(x, input, p->input_size);
  } else {
    std::memset(x, int8_t(p->input_zp), p->input_size);
  }
  const uint64_t t1 = board_.cycles();
  es = Invoke(*p, mem_.arena, mem_.arena_bytes);
  const uint64_t t2 = board_.cycles();
  if (es != EngineStatus::kOk) {
    Error("engine", EngineStatusName(es));
    return false;
  }
  *cycles = t2 - t1;
  std::memcpy(out_, OutputOf(*p, mem_.arena), p->output_size);
  out_n_ = p->output_size;
  out_subnet_ = subnet;
  if (plan_out) *plan_out = p;
  return true;
}

void App::OnOverlongLine() {
  ++stats_.lines;
  Error("line too long", "dropped");
  Ready();
}

void App::OnLine(const char* s, uint32_t n) {
  ++stats_.lines;
  Tokens t;
  text::Split(s, n, &t);
  if (t.n == 0) return;  // an empty line (the LF after a CR, a terminal's Enter): no reply
  if (t.too_many) {
    Error("too many words");
  } else if (t.Is(0, "feed")) {
    Feed(s, t);
    Poll();
  } else if (t.Is(0, "name") && t.n == 1) {
    line_.Str("m-name-dut-[slimhar]");
    Reply(line_);
  } else if (t.Is(0, "profile") && t.n == 1) {
    line_.Str("m-profile-[slimhar ").Str(board_.firmware).Str("]");
    Reply(line_);
    SubnetInfo si;
    blob_.GetSubnet(DbSubnet(), &si);
    line_.Str("m-model-[");
    Name(line_, si);
    line_.Str(forced_ >= 0 ? "]" : " (policy)]");
    Reply(line_);
  } else if (t.Is(0, "timestamp") && t.n == 1) {
    line_.Str("m-lap-us-").U(board_.cycles() / board_.cycles_per_us);
    Reply(line_);
  } else if (t.Is(0, "help") && t.n == 1) {
    const char* h[] = {"m-[MLPerf Tiny: name profile timestamp db load N | db HEX | db print infer N [W] results]",
                       "m-[slimhar: info | subnet list|set N|auto | battery set PCT|auto | budget set PERMILLE|Nms | load set PCT]",
                       "m-[slimhar: stream on|off | feed SEQ V... *CRC32 | feed reset | stats [reset] | debug fault]"};
    for (const char* x : h) board_.write(x);
  } else if (t.Is(0, "db")) {
    MlperfDb(t);
  } else if (t.Is(0, "infer")) {
    MlperfInfer(t);
  } else if (t.Is(0, "results") && (t.n == 1 || (t.n == 2 && t.Is(1, "int8")))) {
    Results();
  } else if (t.Is(0, "info") && t.n == 1) {
    Info();
  } else if (t.Is(0, "subnet") && t.n == 2 && t.Is(1, "list")) {
    for (uint32_t i = 0; i < blob_.subnet_count(); ++i) SubnetRow(i);
  } else if (t.Is(0, "subnet") && t.n == 2 && t.Is(1, "auto")) {
    forced_ = -1;
    line_.Str("m-subnet-auto");
    Reply(line_);
  } else if (t.Is(0, "subnet") && t.n == 3 && t.Is(1, "set")) {
    uint32_t v;
    if (!text::ParseU32(t.tok[2], t.len[2], &v) || v >= blob_.subnet_count()) {
      Error("subnet set", "not a subnet index (subnet list)");
    } else {
      forced_ = int32_t(v);
      line_.Str("m-subnet-").U(v);
      Reply(line_);
    }
  } else if (t.n == 2 && t.Is(0, "battery") && t.Is(1, "auto")) {
    if (!board_.battery_mv) {
      Error("battery auto", "this board has no battery ADC: battery set PCT");
    } else {
      battery_forced_ = false;
      battery_pct_ = battery::LipoPercent(board_.battery_mv());
      line_.Str("m-battery-auto-").U(battery_pct_);
      Reply(line_);
    }
  } else if (t.n == 3 && t.Is(1, "set") && (t.Is(0, "battery") || t.Is(0, "load") || t.Is(0, "budget"))) {
    uint32_t v = 0;
    bool ok = text::ParseU32(t.tok[2], t.len[2], &v);
    if (t.Is(0, "battery")) {
      ok = ok && v <= 100;
      if (ok) {
        battery_pct_ = v;
        battery_forced_ = true;  // until `battery auto` (a board with a battery ADC)
      }
    } else if (t.Is(0, "load")) {
      ok = ok && v <= 90;
      if (ok) {
        load_pct_ = v;
        if (board_.set_load) board_.set_load(v);
      }
    } else {
      // PERMILLE of each hop, or a latency budget in ms ("70ms")
      if (!ok && t.len[2] > 2 && t.tok[2][t.len[2] - 2] == 'm' && t.tok[2][t.len[2] - 1] == 's' &&
          text::ParseU32(t.tok[2], t.len[2] - 2, &v) && v <= 10000000) {
        v = uint32_t(uint64_t(v) * 1000000ull / (hop_us_ ? hop_us_ : 1));
        v = v > 1000 ? 1000 : v;
        ok = v >= 1;
      } else {
        ok = ok && v >= 1 && v <= 1000;
      }
      if (ok) duty_permille_ = v;
    }
    if (!ok) {
      Error(t.Is(0, "battery") ? "battery set" : t.Is(0, "load") ? "load set" : "budget set",
            t.Is(0, "battery") ? "0..100 %" : t.Is(0, "load") ? "0..90 %" : "1..1000 permille of the hop, or Nms");
    } else {
      line_.Str("m-").Str(t.Is(0, "battery") ? "battery-" : t.Is(0, "load") ? "load-" : "budget-permille-")
          .U(t.Is(0, "battery") ? battery_pct_ : t.Is(0, "load") ? load_pct_ : duty_permille_);
      Reply(line_);
    }
  } else if (t.Is(0, "stream") && t.n == 2 && (t.Is(1, "on") || t.Is(1, "off"))) {
    stream_ = t.Is(1, "on");
    line_.Str("m-stream-").Str(stream_ ? "on" : "off");
    Reply(line_);
  } else if (t.Is(0, "stats") && t.n == 1) {
    PrintStats();
  } else if (t.Is(0, "stats") && t.n == 2 && t.Is(1, "reset")) {
    stats_ = Stats{};
    overrun_base_ = SensorOverruns();
    line_.Str("m-stats-reset");
    Reply(line_);
  } else if (t.Is(0, "debug") && t.n == 2 && t.Is(1, "fault") && board_.fault) {
    board_.fault();
  } else {
    Error("unknown command", "help lists them");
  }
  Ready();
}

// feed SEQ V1 .. Vk *CRC32 -- k a multiple of the axes, at most kMaxSamplesPerFeed samples; the
// CRC-32 (as zlib's) of the line's text before " *". Only a complete, correct, in-sequence line
// reaches the ring: a bad one is refused whole, and the sequence number it would have used is
// still expected.
void App::Feed(const char* s, const Tokens& t) {
  if (t.n == 2 && t.Is(1, "reset")) {
    ring_.Reset();
    chain_.Reset();
    if (board_.replay) board_.replay->Clear();
    source_ = default_source_;
    feed_seq_ = 0;
    next_end_ = window_;
    line_.Str("m-feed-reset");
    Reply(line_);
    return;
  }
  const uint32_t values = t.n >= 3 ? t.n - 3 : 0;
  if (t.n < 4 || t.tok[t.n - 1][0] != '*') {
    Error("feed", "expected: feed SEQ V1 .. Vk *CRC32");
    return;
  }
  uint32_t crc = 0, seq = 0;
  if (!text::ParseHex32(t.tok[t.n - 1] + 1, t.len[t.n - 1] - 1, &crc)) {
    Error("feed", "bad CRC field");
    return;
  }
  const uint32_t covered = uint32_t(t.tok[t.n - 1] - s);  // up to the '*'; the space before it excluded
  if (Crc32(reinterpret_cast<const uint8_t*>(s), covered - 1) != crc) {
    Error("feed", "CRC mismatch");
    return;
  }
  if (!text::ParseU32(t.tok[1], t.len[1], &seq)) {
    Error("feed", "bad sequence number");
    return;
  }
  const uint32_t raw = chain_.raw_channels();  // the sensor's channels, before the chain
  if (values % raw != 0 || values / raw > kMaxSamplesPerFeed) {
    line_.Str("feed: ").U(values).Str(" values, expected a multiple of ").U(raw).Str(" (at most ")
        .U(kMaxSamplesPerFeed).Str(" samples)");
    Error(line_.c_str());
    return;
  }
  float v[kMaxSamplesPerFeed * kSpecMaxRaw];
  for (uint32_t i = 0; i < values; ++i) {
    if (!text::ParseFloat(t.tok[2 + i], t.len[2 + i], &v[i])) {
      Error("feed", "a value is not a finite decimal number");
      return;
    }
  }
  if (seq != feed_seq_) {
    line_.Str("feed: sequence gap, expected ").U(feed_seq_).Str(" got ").U(seq);
    Error(line_.c_str());
    return;
  }
  ++feed_seq_;
  if (source_ != Source::kReplay) {  // the link takes over from the board's IMU until `feed reset`
    source_ = Source::kReplay;
    chain_.Reset();
  }
  for (uint32_t k = 0; k < values / raw; ++k) {
    if (replay_routed_) {  // through the replay sensor's FIFO, as a part's samples would come
      imu::Sample smp;
      imu::FromChannels(v + k * raw, replay_routes_, raw, &smp);
      board_.replay->Push(smp);
      if (board_.replay->level() == imu::ReplayImu::kCapacity) Drain(board_.replay, true);
    } else {
      Push(v + k * raw);
    }
  }
  if (replay_routed_) Drain(board_.replay, true);
}

// The spec's raw channel names routed onto the replay sensor (identity: `feed` carries the
// model's raw channels) and onto the board's IMU (its axis table); the IMU configured at the
// model's rate and started.
void App::StartSensing() {
  const InputSpec& spec = blob_.spec();
  char names[kSpecMaxRaw][17], unit[9];
  const char* ptrs[kSpecMaxRaw];
  for (uint32_t i = 0; i < spec.n_raw; ++i) {
    blob_.RawName(i, names[i], unit);
    ptrs[i] = names[i];
  }
  if (board_.replay) {
    replay_routed_ = imu::RouteChannels(imu::kIdentityAxes, ptrs, spec.n_raw, replay_routes_);
    imu::Config rc;
    rc.rate_hz = spec.sample_rate_hz;
    board_.replay->Configure(rc);
    board_.replay->Start();
  }
  if (board_.sensor && board_.axes) {
    sensor_routed_ = imu::RouteChannels(*board_.axes, ptrs, spec.n_raw, sensor_routes_);
    if (!sensor_routed_) {
      sensor_status_ = "unrouted";  // the model's raw channels are not this IMU's axes
    } else {
      imu::Config cfg;
      cfg.rate_hz = spec.sample_rate_hz;
      imu::Status st = board_.sensor->Begin();
      if (st == imu::Status::kOk) st = board_.sensor->Configure(cfg);
      if (st == imu::Status::kOk) st = board_.sensor->Start();
      sensor_running_ = st == imu::Status::kOk;
      sensor_status_ = sensor_running_ ? "ok" : imu::StatusName(st);
      if (sensor_running_) default_source_ = source_ = Source::kSensor;
    }
  }
}

uint32_t App::SensorOverruns() const {
  return (board_.replay ? board_.replay->overruns() : 0) +
         (sensor_running_ ? board_.sensor->overruns() : 0);
}

void App::Push(const float* raw) {
  float m[kMaxAxes];
  chain_.Push(raw, m);
  ring_.Push(m);
  ++stats_.samples;
}

void App::Drain(imu::Imu* from, bool use) {
  imu::Sample buf[8];
  uint32_t n = 0;
  float raw[kSpecMaxRaw];
  const imu::Route* routes = from == board_.replay ? replay_routes_ : sensor_routes_;
  do {
    if (from->Read(buf, 8, &n) != imu::Status::kOk) return;
    for (uint32_t k = 0; use && k < n; ++k) {
      imu::ToChannels(buf[k], routes, chain_.raw_channels(), raw);
      Push(raw);
      RunDueWindows();  // windows as soon as their samples are in, before the ring moves on
    }
  } while (n > 0);
}

void App::Poll() {
  if (sensor_running_) {
    Drain(board_.sensor, source_ == Source::kSensor);  // in replay mode the IMU's samples are discarded
  }
  RunDueWindows();
}

void App::RunDueWindows() {
  while (ring_.count() >= next_end_) {
    if (!ring_.Has(next_end_ - window_)) {
      ++stats_.drops;  // the window's first samples were overwritten before it could run
    } else {
      RunWindow(next_end_);
    }
    next_end_ += hop_;
  }
}

void App::RunWindow(uint64_t end) {
  if (board_.battery_mv && !battery_forced_) battery_pct_ = battery::LipoPercent(board_.battery_mv());
  const policy::Input in{hop_us_, uint16_t(duty_permille_), uint8_t(battery_pct_)};
  policy::Decision d{};
  uint32_t subnet;
  if (forced_ >= 0) {
    subnet = uint32_t(forced_);
    d.budget_us = policy::BudgetUs(policy_cfg_, in);
    d.stride = 1;
  } else {
    // a candidate whose plan is not cached costs its cold prepare too (measured at start-up): the
    // policy sees that in its latency, so a switch never takes the window over its budget
    policy::Candidate view[policy::kMaxCandidates];
    for (uint32_t k = 0; k < n_front_; ++k) {
      view[k] = front_[k];
      if (cache_->Contains(view[k].subnet)) continue;
      const uint64_t cost = uint64_t(view[k].latency_us) + prepare_us_[view[k].subnet];
      view[k].latency_us = cost > 0xFFFFFFFFu ? 0xFFFFFFFFu : uint32_t(cost);  // saturate, never wrap
    }
    d = policy::Choose(view, n_front_, policy_cfg_, in, &policy_state_);
    subnet = d.subnet;
  }
  ++stats_.windows;
  SubnetInfo si;
  blob_.GetSubnet(subnet, &si);
  if (d.flags & policy::kSkip) {
    ++stats_.skipped;
    if (stream_) {
      line_.Str("r seq=").U(stats_.windows - 1).Str(" end=").U(end).Str(" skipped=1 budget_us=").U(d.budget_us)
          .Str(" battery=").U(battery_pct_).Str(" flags=");
      Flags(line_, d.flags, false);
      Reply(line_);
    }
    return;
  }
  // the subnet's input, straight into its plan's input tensor; a subnet whose plan is not cached
  // is prepared now (a cold switch), and that time counts against this window's budget
  EngineStatus es;
  const uint32_t prepares = cache_->prepares();
  const uint64_t t_get = board_.cycles();
  const Plan* p = cache_->Get(blob_, subnet, &es);
  const uint64_t get_cyc = board_.cycles() - t_get;  // a cached plan: a lookup (warm switch); else a prepare
  const bool cold = cache_->prepares() != prepares;
  const uint64_t prep_cyc = cold ? get_cyc : 0;
  if (p == nullptr || p->input_size != uint32_t(si.resolution) * axes_) {
    Error("window", p == nullptr ? EngineStatusName(es) : "subnet input is not T' x axes");
    return;
  }
  int8_t* x = InputOf(*p, mem_.arena);
  ModelInput(ring_, end, window_, si.resolution, mean_, std_, p->input_scale, p->input_zp, x);
  const uint32_t in_crc = Crc32(reinterpret_cast<const uint8_t*>(x), p->input_size);
  uint64_t cyc = 0;
  if (!Run(subnet, x, &cyc, nullptr)) return;
  const uint32_t us = Us(cyc);
  if (forced_ < 0) {
    for (uint32_t k = 0; k < n_front_; ++k)
      if (front_[k].subnet == subnet) policy::Observe(front_[k], us, &policy_state_);
  }
  ++stats_.ran;
  ++stats_.per_subnet[subnet];
  if (last_subnet_ >= 0 && uint32_t(last_subnet_) != subnet) ++stats_.switches;
  last_subnet_ = int32_t(subnet);
  const uint32_t prep_us = Us(prep_cyc);
  const bool over = uint64_t(us) + prep_us > d.budget_us;
  stats_.over_budget += over;
  if (!stream_) return;
  uint32_t best = 0;
  for (uint32_t k = 1; k < out_n_; ++k)
    if (out_[k] > out_[best]) best = k;  // argmax, the first of equal logits (as numpy)
  line_.Str("r seq=").U(stats_.windows - 1).Str(" end=").U(end).Str(" subnet=").U(subnet).Str(" name=");
  Name(line_, si);
  line_.Str(" class=").U(best).Str(" logits=");
  for (uint32_t k = 0; k < out_n_; ++k) line_.Str(k ? "," : "").I(out_[k]);
  line_.Str(" in_crc=").Hex(in_crc).Str(" latency_us=").U(us).Str(" ").Str(board_.clock_name).Ch('=').U(cyc)
      .Str(" prepare_us=").U(prep_us).Str(" plan_").Str(board_.clock_name).Ch('=').U(get_cyc).Str(" cold=").U(cold)
      .Str(" budget_us=").U(d.budget_us).Str(" over=").U(over).Str(" battery=").U(battery_pct_)
      .Str(" duty=").U(duty_permille_).Str(" load=").U(load_pct_).Str(" flags=");
  Flags(line_, d.flags, forced_ >= 0);
  Reply(line_);
}

uint32_t App::DbSubnet() const {
  if (forced_ >= 0) return uint32_t(forced_);
  if (policy_state_.current >= 0) return front_[policy_state_.current].subnet;
  return n_front_ ? front_[n_front_ - 1].subnet : 0;  // before any window: the most accurate
}

// MLPerf Tiny: `db load N` then `db HEX` lines until N bytes; `db print`.
void App::MlperfDb(const Tokens& t) {
  SubnetInfo si;
  blob_.GetSubnet(DbSubnet(), &si);
  const uint32_t need = uint32_t(si.resolution) * axes_;
  if (t.n == 3 && t.Is(1, "load")) {
    uint32_t nb;
    if (!text::ParseU32(t.tok[2], t.len[2], &nb) || nb != need || nb > mem_.db_bytes) {
      line_.Str("db load: this subnet takes ").U(need).Str(" bytes");
      Error(line_.c_str());
      db_expected_ = db_have_ = 0;
      return;
    }
    db_expected_ = nb;
    db_have_ = 0;
    line_.Str("m-[Expecting ").U(nb).Str(" bytes]");
    Reply(line_);
  } else if (t.n == 2 && t.Is(1, "print")) {
    for (uint32_t i = 0; i < db_have_; i += 32) {
      line_.Str("m-buffer-");
      for (uint32_t k = i; k < db_have_ && k < i + 32; ++k) line_.Hex(uint8_t(mem_.db[k]), 2);
      Reply(line_);
    }
  } else if (t.n == 2) {
    uint32_t got = 0;
    if (db_expected_ == 0) {
      Error("db", "no db load N first");
    } else if (!text::ParseHexBytes(t.tok[1], t.len[1], reinterpret_cast<uint8_t*>(mem_.db) + db_have_,
                                    db_expected_ - db_have_, &got)) {
      Error("db", "not hex bytes, or more than db load announced");
    } else {
      db_have_ += got;
      if (db_have_ == db_expected_) {
        line_.Str("m-load-done");
        Reply(line_);
      }
    }
  } else {
    Error("db", "db load N | db HEX | db print");
  }
}

// MLPerf Tiny: `infer N [W]`: W warm-up runs, then N timed runs of the db input.
void App::MlperfInfer(const Tokens& t) {
  uint32_t n = 1, w = 10;
  if (t.n < 2 || t.n > 3 || !text::ParseU32(t.tok[1], t.len[1], &n) || n == 0 || n > 100000 ||
      (t.n == 3 && (!text::ParseU32(t.tok[2], t.len[2], &w) || w > 100000))) {
    Error("infer", "infer N [W], 1 <= N <= 100000");
    return;
  }
  if (db_expected_ == 0 || db_have_ != db_expected_) {
    Error("infer", "no complete db input (db load N, db HEX)");
    return;
  }
  const uint32_t subnet = DbSubnet();
  uint64_t cyc;
  line_.Str("m-warmup-start-").U(w);
  Reply(line_);
  for (uint32_t i = 0; i < w; ++i)
    if (!Run(subnet, mem_.db, &cyc, nullptr)) return;
  line_.Str("m-warmup-done");
  Reply(line_);
  line_.Str("m-infer-start-").U(n);
  Reply(line_);
  const uint64_t t0 = board_.cycles();
  line_.Str("m-lap-us-").U(t0 / board_.cycles_per_us);
  Reply(line_);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (!Run(subnet, mem_.db, &cyc, nullptr)) return;
    sum += cyc;
  }
  const uint64_t t1 = board_.cycles();
  line_.Str("m-lap-us-").U(t1 / board_.cycles_per_us);
  Reply(line_);
  line_.Str("m-infer-done");
  Reply(line_);
  line_.Str("m-infer-").Str(board_.clock_name).Str("-per-run-").U(sum / n);
  Reply(line_);
  Results();
}

void App::Results() {
  if (out_n_ == 0) {
    Error("results", "nothing inferred yet");
    return;
  }
  Plan const* p = nullptr;
  EngineStatus es;
  p = cache_->Get(blob_, out_subnet_, &es);
  const float scale = p ? p->output_scale : 0.0f;
  const int32_t zp = p ? p->output_zp : 0;
  line_.Str("m-results-[");
  for (uint32_t k = 0; k < out_n_; ++k) line_.Str(k ? "," : "").Fixed(scale * float(int32_t(out_[k]) - zp), 3);
  line_.Str("]");
  Reply(line_);
  line_.Str("m-results-int8-[");
  for (uint32_t k = 0; k < out_n_; ++k) line_.Str(k ? "," : "").I(out_[k]);
  line_.Str("]");
  Reply(line_);
}

void App::SubnetRow(uint32_t i) {
  SubnetInfo s;
  blob_.GetSubnet(i, &s);
  bool on_front = false;
  for (uint32_t k = 0; k < n_front_; ++k) on_front |= front_[k].subnet == i;
  line_.Str("info subnet i=").U(i).Str(" name=");
  Name(line_, s);
  line_.Str(" t=").U(s.resolution).Str(" channels=").U(s.channels[0]).Ch(',').U(s.channels[1]).Ch(',')
      .U(s.channels[2]).Str(" macs=").U(s.macs).Str(" acc_bp=")
      .U(uint32_t(std::lround(s.int8_acc > 0 && s.int8_acc <= 1 ? s.int8_acc * 10000.0f : 0.0f)))
      .Str(" latency_us=").U(latency_us_[i]).Ch(' ').Str(board_.clock_name).Ch('=').U(latency_cycles_[i])
      .Str(" prepare_us=").U(prepare_us_[i]).Str(" plan=").Str((plan_stored_[i / 32] >> (i % 32)) & 1u ? "stored" : "model")
      .Str(" front=").U(on_front);
  Reply(line_);
}

void App::Info() {
  line_.Str("info firmware=").Str(board_.firmware).Str(" protocol=").U(kProtocolVersion).Str(" board=")
      .Str(board_.board).Str(" kernels=").Str(KernelFlavour()).Str(" clock=").Str(board_.clock_name)
      .Str(" per_us=").U(board_.cycles_per_us);
  Reply(line_);
  line_.Str("info blob subnets=").U(blob_.subnet_count()).Str(" window=").U(window_).Str(" axes=").U(axes_)
      .Str(" classes=").U(classes_).Str(" rate_mhz=").U(rate_mhz_).Str(" hop=").U(hop_).Str(" hop_us=").U(hop_us_)
      .Str(" arch=").Str(blob_.arch() ? "resnet" : "cnn").Str(" crc=").Hex(blob_.crc());
  Reply(line_);
  InfoInput();
  for (uint32_t i = 0; i < blob_.subnet_count(); ++i) SubnetRow(i);
  line_.Str("info policy mode=").Str(forced_ >= 0 ? "forced" : "auto");
  if (forced_ >= 0) line_.Str(" subnet=").U(uint32_t(forced_));
  line_.Str(" front=").U(n_front_).Str(" budget_permille=").U(duty_permille_).Str(" battery=").U(battery_pct_)
      .Str(" load=").U(load_pct_).Str(" budget_us=")
      .U(policy::BudgetUs(policy_cfg_, policy::Input{hop_us_, uint16_t(duty_permille_), uint8_t(battery_pct_)}))
      .Str(" stream=").Str(stream_ ? "on" : "off");
  Reply(line_);
}

// The input spec: what `feed` takes (raw channels and units), the chain, the model's channels
// and class names.
void App::InfoInput() {
  const InputSpec& s = blob_.spec();
  char name[25], unit[9];
  line_.Str("info input source=").Str(source_ == Source::kSensor ? "sensor" : "replay").Str(" sensor=")
      .Str(sensor_status_).Str(" replay=").Str(replay_routed_ ? "fifo" : "direct").Str(" raw=");
  for (uint32_t i = 0; i < s.n_raw; ++i) {
    blob_.RawName(i, name, unit);
    line_.Str(i ? "," : "").Str(name).Ch(':').Str(unit[0] ? unit : "-");
  }
  line_.Str(" channels=");
  for (uint32_t c = 0; c < s.n_channels; ++c) {
    blob_.ChannelName(c, name, unit);
    line_.Str(c ? "," : "").Str(name);
  }
  line_.Str(" chain=");
  if (s.offline()) line_.Str("offline");
  if (!s.offline() && s.n_stages == 0) line_.Ch('-');
  for (uint32_t i = 0; i < s.n_stages; ++i) {
    SpecStage g;
    blob_.GetStage(i, &g);
    const char* op = g.op == SpecOp::kMedian ? "median3" : g.op == SpecOp::kSos ? "sos" : "sub";
    line_.Str(i ? "," : "").Str(op);
    if (g.op == SpecOp::kSos) line_.U(g.arg1);
    line_.Ch('x').U(g.count);
  }
  Reply(line_);
  line_.Str("info classes names=");
  for (uint32_t k = 0; k < s.n_classes; ++k) {
    blob_.ClassName(k, name);
    line_.Str(k ? "," : "").Str(name);
  }
  Reply(line_);
}

void App::PrintStats() {
  line_.Str("m-stats lines=").U(stats_.lines).Str(" errors=").U(stats_.errors).Str(" samples=").U(stats_.samples)
      .Str(" windows=").U(stats_.windows).Str(" ran=").U(stats_.ran).Str(" skipped=").U(stats_.skipped)
      .Str(" drops=").U(stats_.drops).Str(" overruns=")
      .U(stats_.overruns + SensorOverruns() - overrun_base_).Str(" switches=").U(stats_.switches)
      .Str(" over_budget=").U(stats_.over_budget).Str(" per_subnet=");
  bool any = false;
  for (uint32_t i = 0; i < blob_.subnet_count(); ++i) {
    if (!stats_.per_subnet[i]) continue;
    line_.Str(any ? "," : "").U(i).Ch(':').U(stats_.per_subnet[i]);
    any = true;
  }
  if (!any) line_.Ch('-');
  Reply(line_);
}

}  // namespace slimhar
