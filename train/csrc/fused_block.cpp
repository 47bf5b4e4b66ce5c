// Fused element-wise work of the ``fused`` training layout (train/models/fused.py): for one
// slimmable conv block, the conv output's training-mode BatchNorm and ReLU in two passes
// forward and their gradient in two passes backward, reading and writing exactly the buffers
// the GEMMs around them use (padding rows zeroed here, so nothing is padded, filled or copied
// again); the first conv (one input channel) computed inside; the ResNet block's end (conv2's
// BatchNorm + the normalized shortcut + ReLU) and its gradient into both branches; adaptive
// max pooling.
//
// Shapes (all contiguous, rows = B * L):
//   z     [B, n, m*o]   chunk products of a conv (float or bfloat16), n = L + m - 1 (conv2 of a
//                       ResNet block: its unpadded input, n = L, the chunk sum skips the pad)
//   y     [B, L, o]     conv output = sum_q z[:, l + q, q*o:(q+1)*o] (the first conv: computed
//                       here from x), saved for backward in the GEMM dtype (bfloat16 mode: bf16);
//                       a ResNet block stores conv1 and the shortcut side by side, [B, L, 2o]
//   out   [B, R, o]     the next conv's padded input: rows [row0, row0 + L) = relu(bn(y)), the
//                       other rows zero; rows past R are cropped (the next conv never reads them)
//   gz    [B, n, m*P]   gradient of z (the backward GEMMs' input), zero where no output reads it
// Statistics: per-channel sums in float over blocks of 64 rows, then double (no cancellation).
// The per-channel inner loops carry `#pragma GCC ivdep`: their pointers never overlap, and
// without it gcc gives up vectorizing them (too many run-time alias checks).
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

// Element access for float and bfloat16 storage (bfloat16 as uint16_t bits: c10::BFloat16 is a
// struct and its conversion branches on NaN, both of which stop gcc vectorizing). Round to
// nearest even; a NaN stays NaN unless only its low 16 mantissa bits are set (then infinity).
inline float Load(float v) { return v; }
inline float Load(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline void Store(float* dst, float v) { *dst = v; }
inline void Store(uint16_t* dst, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  *dst = static_cast<uint16_t>(bits >> 16);
}

template <typename T>
T* Data(const at::Tensor& t) { return static_cast<T*>(t.data_ptr()); }

void Check(bool ok, const char* what) { TORCH_CHECK(ok, "slimhar fused kernels: ", what); }

int64_t Parts(int64_t rows) { return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows)); }

// fn(part, r0, r1) over Parts(rows) contiguous ranges of [0, rows), one per thread.
template <typename F>
void ForRowBlocks(int64_t rows, F&& fn) {
  const int64_t parts = Parts(rows);
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) fn(p, rows * p / parts, rows * (p + 1) / parts);
  });
}

// (b, l) of flat row r = b * L + l, advanced without a 64-bit division per row.
struct RowPos {
  int64_t b, l, L;
  RowPos(int64_t r, int64_t len) : b(r / len), l(r % len), L(len) {}
  void Next() {
    if (++l == L) {
      l = 0;
      ++b;
    }
  }
};

// Per-channel sums of K quantities over many rows: float sums over blocks of kFlushRows rows
// (vectorizable), added to double totals after each block.
template <int K>
class ChannelSums {
 public:
  static constexpr int kFlushRows = 64;
  explicit ChannelSums(int64_t o) : o_(o), f_(K * o, 0.0f), d_(K * o, 0.0) {}
  float* sums() { return f_.data(); }      // K blocks of o floats
  void EndRow() {
    if (++rows_ == kFlushRows) Flush();
  }
  void Flush() {
    for (int64_t c = 0; c < K * o_; ++c) {
      d_[c] += f_[c];
      f_[c] = 0.0f;
    }
    rows_ = 0;
  }
  const double* totals() const { return d_.data(); }

 private:
  int64_t o_;
  int rows_ = 0;
  std::vector<float> f_;
  std::vector<double> d_;
};

constexpr int kFlushRows = ChannelSums<1>::kFlushRows;

// K per-channel sums over rows [0, rows) (flat row r = b * L + l), one part per thread, merged
// in a fixed order (deterministic for a given thread count). add(b, l, scratch, s) adds row
// (b, l)'s contribution to s[k * o + c] (scratch: 2 * o floats). Returns the K * o totals.
template <int K, typename AddRow>
std::vector<double> RowSums(int64_t rows, int64_t L, int64_t o, const AddRow& add) {
  const int64_t parts = Parts(rows);
  std::vector<double> acc(static_cast<size_t>(parts * K * o), 0.0);
  ForRowBlocks(rows, [&](int64_t part, int64_t r0, int64_t r1) {
    ChannelSums<K> sums(o);
    std::vector<float> scratch(2 * o);
    RowPos pos(r0, L);
    for (int64_t r = r0; r < r1; ++r, pos.Next()) {
      add(pos.b, pos.l, scratch.data(), sums.sums());
      sums.EndRow();
    }
    sums.Flush();
    std::copy(sums.totals(), sums.totals() + K * o, acc.data() + part * K * o);
  });
  std::vector<double> total(static_cast<size_t>(K * o), 0.0);
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t c = 0; c < K * o; ++c) total[c] += acc[p * K * o + c];
  return total;
}

// ---- conv output rows: stored ones (src(b, l) -> the stored row) and computed ones (Each) ----

// A stored conv output: row (b, l) is y[(b * L + l) * ld + off + c], c < o (ld > o: channels
// [off, off + o) of a wider tensor -- one branch of the ResNet's concatenated conv1 + shortcut
// output). float, or bfloat16 (half the traffic of the passes that read it). Readers get the
// stored row and convert each element as they use it (Load): a conversion loop into a float
// buffer first costs a loop and a buffer round trip per row, which at a few channels is most
// of a row's time.
template <typename TY>
struct StoredRows {
  const TY* y;
  int64_t L, o, ld, off;
  const TY* operator()(int64_t b, int64_t l) const { return y + (b * L + l) * ld + off; }
};

template <typename TY>
StoredRows<TY> Rows(const TY* y, int64_t L, int64_t o) { return StoredRows<TY>{y, L, o, o, 0}; }

// Computed conv outputs, pass 1 of the forward: Each(b, l, scratch, f) computes row (b, l),
// stores it into y and calls f(c, value) for each channel in the same loop (the float value,
// before y's rounding to bfloat16), so a row is one pass over its channels.

// The shifted sum of chunk products: y[b, l] = sum_q z[b, l + q - shift, q-th block] over the
// rows that exist. shift = 0: z has the padded input's n = L + m - 1 rows; shift = pad: the
// input was not padded (n = L + m - 1 - 2 * shift rows; the missing rows would be zero
// products). Rows with 2 or 3 pieces (every row of the kernel-6 stride-3 convs and the
// interior rows of conv2) sum their pieces in one loop, in the order of the general case.
template <typename TZ>
struct ChunkSumRows {
  const TZ* z;
  TZ* y;
  int64_t L, n, m, o, shift;
  const TZ* Piece(int64_t b, int64_t l, int64_t q) const { return z + (b * n + l + q - shift) * m * o + q * o; }
  template <typename F>
  void Each(int64_t b, int64_t l, float* scratch, const F& f) const {
    const int64_t q0 = std::max<int64_t>(0, shift - l), q1 = std::min<int64_t>(m, n + shift - l);
    TZ* __restrict__ yr = y + (b * L + l) * o;
    const auto emit = [&](const auto& value) {      // one loop: value(c) -> y and f
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) {
        const float v = value(c);
        Store(yr + c, v);
        f(c, v);
      }
    };
    const TZ* __restrict__ z0 = Piece(b, l, q0);
    if (q1 - q0 == 3) {
      const TZ* __restrict__ z1 = Piece(b, l, q0 + 1);
      const TZ* __restrict__ z2 = Piece(b, l, q0 + 2);
      emit([=](int64_t c) { return Load(z0[c]) + Load(z1[c]) + Load(z2[c]); });
    } else if (q1 - q0 == 2) {
      const TZ* __restrict__ z1 = Piece(b, l, q0 + 1);
      emit([=](int64_t c) { return Load(z0[c]) + Load(z1[c]); });
    } else {
      float* __restrict__ acc = scratch;
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) acc[c] = Load(z0[c]);
      for (int64_t q = q0 + 1; q < q1; ++q) {
        const TZ* __restrict__ zq = Piece(b, l, q);
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) acc[c] += Load(zq[c]);
      }
      emit([=](int64_t c) { return acc[c]; });
    }
  }
};

// A conv output row computed into scratch by conv(b, l, scratch) (the first conv), stored into y.
template <typename TY, typename Conv>
struct StoredConvRows {
  const Conv& conv;
  TY* y;
  int64_t L, o;
  template <typename F>
  void Each(int64_t b, int64_t l, float* scratch, const F& f) const {
    const float* __restrict__ row = conv(b, l, scratch);
    TY* __restrict__ yr = y + (b * L + l) * o;
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) {
      Store(yr + c, row[c]);
      f(c, row[c]);
    }
  }
};

// The first conv (one input channel): y[b, l, c] = sum_j x[b, s*l+j-p] w[c, j] (six
// multiply-adds per output: cheaper than a K=3 matrix product).
struct FirstConvRows {
  const float* x;     // [B, T]
  const float* wt;    // [k, o]
  int64_t T, L, s, p, k, o;
  // channels [c0, c0 + W) of one output row: W sums kept in registers across the taps
  template <int W>
  void Taps(const float* __restrict__ xr, int64_t j0, int64_t j1, int64_t c0, float* __restrict__ yr) const {
    float acc[W] = {};
    for (int64_t j = j0; j < j1; ++j) {
      const float xv = xr[j];
      const float* __restrict__ wj = wt + j * o + c0;
      for (int c = 0; c < W; ++c) acc[c] += xv * wj[c];
    }
    for (int c = 0; c < W; ++c) yr[c0 + c] = acc[c];
  }
  const float* operator()(int64_t b, int64_t l, float* scratch) const {
    const int64_t j0 = std::max<int64_t>(0, p - s * l), j1 = std::min<int64_t>(k, T + p - s * l);
    const float* __restrict__ xr = x + b * T + s * l - p;      // xr[j] valid for j in [j0, j1)
    int64_t c0 = 0;
    for (; c0 + 16 <= o; c0 += 16) Taps<16>(xr, j0, j1, c0, scratch);
    for (; c0 < o; c0 += 4) Taps<4>(xr, j0, j1, c0, scratch);     // channels: multiples of 4 (make_divisible)
    return scratch;
  }
};

// ---- forward ----

// The pre-ReLU values, one expression each shared by forward and backward: the backward's ReLU
// mask must be the forward's bit for bit (same operations, same contraction into FMAs).
inline float BnPre(float y, float scale, float shift) { return y * scale + shift; }
inline float ResidualPre(float a, float sa, float ta, float v, float sv, float tv) {
  return BnPre(a, sa, ta) + BnPre(v, sv, tv);
}

// BatchNorm as an affine map y * scale + shift (scale = gamma * rstd, shift = beta - mean * scale).
struct Affine {
  std::vector<float> scale, shift;
  Affine(const float* mean, const float* rstd, const at::Tensor& gamma, const at::Tensor& beta)
      : scale(gamma.size(0)), shift(gamma.size(0)) {
    const float* gp = Data<float>(gamma);
    const float* bp = Data<float>(beta);
    for (size_t c = 0; c < scale.size(); ++c) {
      scale[c] = gp[c] * rstd[c];
      shift[c] = bp[c] - mean[c] * scale[c];
    }
  }
};

struct Norm {
  at::Tensor mean, rstd;                 // float [o], saved for backward
  at::Tensor var;                        // float [o], the biased batch variance (BN calibration)
  Affine bn;
};

// Pass 1: batch statistics of the conv output (biased variance, as BatchNorm normalizes).
template <typename Src>
Norm ConvStats(int64_t rows, int64_t L, const at::Tensor& gamma, const at::Tensor& beta, double eps, const Src& src) {
  const int64_t o = gamma.size(0);
  const std::vector<double> sums = RowSums<2>(rows, L, o, [&](int64_t b, int64_t l, float* scratch, float* s) {
    float* __restrict__ s1 = s;
    float* __restrict__ s2 = s + o;
    src.Each(b, l, scratch, [s1, s2](int64_t c, float v) {
      s1[c] += v;
      s2[c] += v * v;
    });
  });
  auto mean = at::empty({o}, gamma.options()), rstd = at::empty({o}, gamma.options());
  auto var = at::empty({o}, gamma.options());
  float* mp = Data<float>(mean);
  float* rp = Data<float>(rstd);
  float* vp = Data<float>(var);
  for (int64_t c = 0; c < o; ++c) {
    const double mu = sums[c] / rows;
    const double v = std::max(0.0, sums[o + c] / rows - mu * mu);
    mp[c] = static_cast<float>(mu);
    vp[c] = static_cast<float>(v);
    rp[c] = static_cast<float>(1.0 / std::sqrt(v + eps));
  }
  return Norm{mean, rstd, var, Affine(mp, rp, gamma, beta)};
}

// Pass 2: out rows [row0, row0 + L) = act(b, l, scratch, orow) (out.size(2) activations; scratch
// holds 2 * out.size(2) floats), the other rows zero; rows past R are cropped (the next conv
// never reads them).
template <typename TO, typename Act>
void WriteRows(int64_t L, at::Tensor& out, int64_t row0, const Act& act) {
  const int64_t B = out.size(0), R = out.size(1), o = out.size(2);
  const int64_t Lw = std::min(L, R - row0);     // output rows the next conv reads
  TO* op = Data<TO>(out);
  at::parallel_for(0, B * R, 64, [&](int64_t i0, int64_t i1) {
    std::vector<float> scratch(2 * o);
    RowPos pos(i0, R);
    for (int64_t i = i0; i < i1; ++i, pos.Next()) {
      const int64_t j = pos.l - row0;
      TO* __restrict__ orow = op + i * o;
      if (j < 0 || j >= Lw) {
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) Store(orow + c, 0.0f);
        continue;
      }
      act(pos.b, j, scratch.data(), orow);
    }
  });
}

// out = relu(bn(y)) over the first out.size(2) channels of src.
template <typename TO, typename Src>
void WriteBnRelu(int64_t L, const Affine& bn, at::Tensor& out, int64_t row0, const Src& src) {
  const int64_t o = out.size(2);
  const float* __restrict__ sc = bn.scale.data();
  const float* __restrict__ sh = bn.shift.data();
  WriteRows<TO>(L, out, row0, [&](int64_t b, int64_t l, float*, TO* __restrict__ orow) {
    const auto* __restrict__ yr = src(b, l);
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) Store(orow + c, std::max(0.0f, BnPre(Load(yr[c]), sc[c], sh[c])));
  });
}

// y (all gamma.size(0) channels) is stored in the GEMM dtype (TZ); out gets the first
// out.size(2) channels (all of them for a CNN block; conv1's half of a ResNet block's
// concatenated conv1 + shortcut output).
template <typename TZ, typename TO>
std::vector<at::Tensor> Forward(const at::Tensor& z, int64_t L, int64_t m, const at::Tensor& gamma,
                                const at::Tensor& beta, double eps, at::Tensor& out, int64_t row0) {
  const int64_t B = z.size(0), n = z.size(1), o = gamma.size(0);
  auto y = at::empty({B, L, o}, z.options());
  const Norm nm = ConvStats(B * L, L, gamma, beta, eps, ChunkSumRows<TZ>{Data<TZ>(z), Data<TZ>(y), L, n, m, o, 0});
  WriteBnRelu<TO>(L, nm.bn, out, row0, StoredRows<TZ>{Data<TZ>(y), L, out.size(2), o, 0});
  return {y, nm.mean, nm.rstd, nm.var};
}

// The first conv's output is computed once, stored (in the dtype of `out`) and read back:
// recomputing it in the other three passes measured slower.
template <typename TO>
std::vector<at::Tensor> ForwardFirst(const FirstConvRows& conv, int64_t B, const at::Tensor& gamma,
                                     const at::Tensor& beta, double eps, at::Tensor& out, int64_t row0) {
  const int64_t L = conv.L, o = conv.o;
  auto y = at::empty({B, L, o}, out.options());
  TO* yp = Data<TO>(y);
  const Norm nm = ConvStats(B * L, L, gamma, beta, eps, StoredConvRows<TO, FirstConvRows>{conv, yp, L, o});
  WriteBnRelu<TO>(L, nm.bn, out, row0, StoredRows<TO>{yp, L, out.size(2), o, 0});
  return {y, nm.mean, nm.rstd, nm.var};
}

// The ResNet block's end: y2 = the chunk sum of z2 (conv2), its batch statistics, then
// out = relu(bn2(y2) + bn_short(ys)), ys = channels [s_off, s_off + o) of ycat (the shortcut
// conv's output, normalized with its already computed statistics).
template <typename TZ, typename TO>
std::vector<at::Tensor> ResidualForward(const at::Tensor& z2, int64_t L, int64_t m, int64_t shift, const at::Tensor& g2,
                                        const at::Tensor& b2, double eps, const at::Tensor& ycat, int64_t s_off,
                                        const at::Tensor& mean_s, const at::Tensor& rstd_s, const at::Tensor& gs,
                                        const at::Tensor& bs, at::Tensor& out, int64_t row0) {
  const int64_t B = z2.size(0), n = z2.size(1), o = g2.size(0);
  auto y2 = at::empty({B, L, o}, z2.options());
  const Norm nm = ConvStats(B * L, L, g2, b2, eps, ChunkSumRows<TZ>{Data<TZ>(z2), Data<TZ>(y2), L, n, m, o, shift});
  const Affine sbn(Data<float>(mean_s), Data<float>(rstd_s), gs, bs);
  const StoredRows<TZ> main = Rows(Data<TZ>(y2), L, o);
  const StoredRows<TZ> shortcut{Data<TZ>(ycat), L, o, ycat.size(2), s_off};
  const float* __restrict__ sc = nm.bn.scale.data();
  const float* __restrict__ sh = nm.bn.shift.data();
  const float* __restrict__ ss = sbn.scale.data();
  const float* __restrict__ st = sbn.shift.data();
  WriteRows<TO>(L, out, row0, [&](int64_t b, int64_t l, float*, TO* __restrict__ orow) {
    const TZ* __restrict__ a = main(b, l);
    const TZ* __restrict__ v = shortcut(b, l);
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c)
      Store(orow + c, std::max(0.0f, ResidualPre(Load(a[c]), sc[c], sh[c], Load(v[c]), ss[c], st[c])));
  });
  return {y2, nm.mean, nm.rstd, nm.var};
}

// ---- backward ----

// BatchNorm's backward for one branch: dy = scale * (g - k1 - xhat * k2) with g = dL/d(its
// output), xhat = (y - mean) * rstd, k1 = mean(g), k2 = mean(g * xhat); dbeta = sum(g),
// dgamma = sum(g * xhat).
struct GradNorm {
  const float* mean;
  const float* rstd;
  Affine bn;
  std::vector<float> k1, k2;      // mean(g), mean(g * xhat)
  std::vector<float> ya, y0;      // the folded dy = scale * g + ya * y + y0 (Finish)
  at::Tensor dgamma, dbeta;
  GradNorm(const at::Tensor& mean_t, const at::Tensor& rstd_t, const at::Tensor& gamma, const at::Tensor& beta)
      : mean(Data<float>(mean_t)), rstd(Data<float>(rstd_t)), bn(mean, rstd, gamma, beta), k1(gamma.size(0)),
        k2(gamma.size(0)), ya(gamma.size(0)), y0(gamma.size(0)), dgamma(at::empty({gamma.size(0)}, gamma.options())),
        dbeta(at::empty({gamma.size(0)}, gamma.options())) {}
  // From sum(g) and sum(g * xhat) over `rows` rows.
  void Finish(const double* sg, const double* sgx, int64_t rows) {
    float* dgp = Data<float>(dgamma);
    float* dbp = Data<float>(dbeta);
    for (size_t c = 0; c < k1.size(); ++c) {
      dbp[c] = static_cast<float>(sg[c]);
      dgp[c] = static_cast<float>(sgx[c]);
      k1[c] = static_cast<float>(sg[c] / rows);
      k2[c] = static_cast<float>(sgx[c] / rows);
      // dy = scale * (g - k1 - (y - mean) * rstd * k2) = scale * g + ya[c] * y + y0[c]
      ya[c] = -bn.scale[c] * rstd[c] * k2[c];
      y0[c] = -bn.scale[c] * k1[c] - ya[c] * mean[c];
    }
  }
};

// Pass 1 (conv + BN + ReLU): g = dL/d(pre-ReLU) (zero for rows the next conv never read) and
// its two per-channel sums.
template <typename TG, typename Src>
GradNorm GradStats(int64_t B, int64_t L, const at::Tensor& mean, const at::Tensor& rstd, const at::Tensor& gamma,
                   const at::Tensor& beta, const TG* gp, int64_t R, int64_t row0, const Src& src) {
  const int64_t o = gamma.size(0), rows = B * L;
  const int64_t Lw = std::min(L, R - row0);
  GradNorm gn(mean, rstd, gamma, beta);
  const float* __restrict__ sc = gn.bn.scale.data();
  const float* __restrict__ sh = gn.bn.shift.data();
  const float* __restrict__ mp = gn.mean;
  const float* __restrict__ rp = gn.rstd;
  const std::vector<double> sums = RowSums<2>(rows, L, o, [&](int64_t b, int64_t l, float*, float* s) {
    if (l >= Lw) return;
    const auto* __restrict__ yr = src(b, l);
    const TG* __restrict__ gr = gp + (b * R + row0 + l) * o;
    float* __restrict__ sg = s;
    float* __restrict__ sgx = s + o;
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) {
      const float y = Load(yr[c]);
      const float pre = BnPre(y, sc[c], sh[c]);
      const float gv = Load(gr[c]);          // unconditional load: lets the loop vectorize
      const float g = pre > 0.0f ? gv : 0.0f;
      sg[c] += g;
      sgx[c] += g * ((y - mp[c]) * rp[c]);
    }
  });
  gn.Finish(sums.data(), sums.data() + o, rows);
  return gn;
}

// dy of one row (folded: scale * g + ya * y + y0, g = the incoming gradient where the ReLU
// passed it); gr == nullptr: g = 0 (rows the next conv never read).
template <typename TY, typename TG>
inline void RowGrad(const GradNorm& gn, int64_t o, const TY* __restrict__ yr, const TG* __restrict__ gr,
                    float* __restrict__ dst) {
  const float* __restrict__ sc = gn.bn.scale.data();
  const float* __restrict__ sh = gn.bn.shift.data();
  const float* __restrict__ ya = gn.ya.data();
  const float* __restrict__ y0 = gn.y0.data();
  if (gr == nullptr) {
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) dst[c] = ya[c] * Load(yr[c]) + y0[c];
    return;
  }
#pragma GCC ivdep
  for (int64_t c = 0; c < o; ++c) {
    const float y = Load(yr[c]);
    const float pre = BnPre(y, sc[c], sh[c]);
    const float gv = Load(gr[c]);
    const float g = pre > 0.0f ? gv : 0.0f;
    dst[c] = sc[c] * g + ya[c] * y + y0[c];
  }
}

// ---- where the conv output gradients dy go (pass 2 "sinks") ----
// A sink hands each thread part a writer (Part(p)); writer.Put(b, l, dy) takes the o floats of
// row (b, l), writer.Done() ends the part. Parts are the ForRowBlocks ranges.

// Into a chunk-product gradient gz [B, n, m * P] that the backward GEMMs read (the mirror of
// ChunkSumRows): gz[b, l + q - shift, q * P + off + c] = dy[b, l, c] for every piece q < m whose
// row exists. Columns [off, off + o) of each piece are this conv's (P > o: the ResNet's
// concatenated conv1 + shortcut); Zero() clears the entries of them no output row reaches.
template <typename TZ>
struct ChunkGrad {
  TZ* gz;
  int64_t L, n, m, P, off, o, shift;
  struct Writer {
    const ChunkGrad* g;
    // dy stored (converted) into each piece by a loop of its own: a memcpy call per piece from
    // a converted row costs more than the conversion at a few channels
    void Put(int64_t b, int64_t l, const float* __restrict__ dy) {
      const int64_t o = g->o;
      const int64_t q0 = std::max<int64_t>(0, g->shift - l), q1 = std::min<int64_t>(g->m, g->n + g->shift - l);
      for (int64_t q = q0; q < q1; ++q) {
        TZ* __restrict__ dst = g->gz + (b * g->n + l + q - g->shift) * g->m * g->P + q * g->P + g->off;
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) Store(dst + c, dy[c]);
      }
    }
    void Done() const {}
  };
  Writer Part(int64_t) const { return Writer{this}; }
  void Zero(int64_t B) const {
    at::parallel_for(0, B, 64, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t q = 0; q < m; ++q) {
          // rows j = l + q - shift for l in [0, L) are written by Put
          const int64_t w0 = std::max<int64_t>(0, q - shift), w1 = std::min<int64_t>(n, L + q - shift);
          for (int64_t j = 0; j < n; ++j) {
            if (j == w0 && w1 > w0) j = w1;
            if (j >= n) break;
            TZ* __restrict__ dst = gz + (b * n + j) * m * P + q * P + off;
#pragma GCC ivdep
            for (int64_t c = 0; c < o; ++c) Store(dst + c, 0.0f);
          }
        }
    });
  }
};

// d[j * o + c] += sum_r xb[r * K + j] * dyb[r * o + c] over `rows` buffered rows. Blocks of 16
// channels keep all K taps' sums in registers across the rows (2K vectors of 8 floats, GCC
// vector extensions: the auto-vectorizer spills this loop nest), then go to d once.
typedef float F8 __attribute__((vector_size(32)));

inline F8 LoadF8(const float* p) {
  F8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int K>
void AccumulateTaps(int rows, const float* xb, const float* dyb, int64_t o, double* d) {
  int64_t c0 = 0;
  for (; c0 + 16 <= o; c0 += 16) {
    F8 acc[K][2];
    for (int j = 0; j < K; ++j) acc[j][0] = acc[j][1] = F8{};
    for (int r = 0; r < rows; ++r) {
      const F8 d0 = LoadF8(dyb + r * o + c0), d1 = LoadF8(dyb + r * o + c0 + 8);
      for (int j = 0; j < K; ++j) {
        const float xv = xb[r * K + j];
        acc[j][0] += xv * d0;
        acc[j][1] += xv * d1;
      }
    }
    for (int j = 0; j < K; ++j)
      for (int c = 0; c < 8; ++c) {
        d[j * o + c0 + c] += acc[j][0][c];
        d[j * o + c0 + 8 + c] += acc[j][1][c];
      }
  }
  if (c0 + 8 <= o) {              // 8 more channels
    F8 acc[K];
    for (int j = 0; j < K; ++j) acc[j] = F8{};
    for (int r = 0; r < rows; ++r) {
      const F8 d0 = LoadF8(dyb + r * o + c0);
      for (int j = 0; j < K; ++j) acc[j] += xb[r * K + j] * d0;
    }
    for (int j = 0; j < K; ++j)
      for (int c = 0; c < 8; ++c) d[j * o + c0 + c] += acc[j][c];
    c0 += 8;
  }
  for (; c0 < o; ++c0) {          // the remaining (< 8) channels
    float acc[K] = {};
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < K; ++j) acc[j] += xb[r * K + j] * dyb[r * o + c0];
    for (int j = 0; j < K; ++j) d[j * o + c0] += acc[j];
  }
}

// Into the first conv's weight gradient: gw[c, j] = sum_{b,l} dy[b,l,c] x[b, s*l+j-p]. Each part
// buffers kFlushRows rows of dy and their input taps, then accumulates them per channel block
// in registers (float over the block of rows, then double); no gradient tensor of the conv
// output is ever written.
struct FirstGrad {
  const FirstConvRows& conv;
  int64_t o, parts;
  std::vector<double> acc;            // [parts, k, o]
  FirstGrad(const FirstConvRows& c, int64_t o_, int64_t rows)
      : conv(c), o(o_), parts(Parts(rows)), acc(static_cast<size_t>(parts * c.k * o_), 0.0) {}
  struct Writer {
    FirstGrad* g;
    int64_t part;
    std::vector<float> dyb, xb;       // [kFlushRows, o], [kFlushRows, k]
    std::vector<double> d;            // [k, o]
    int rows = 0;
    void Put(int64_t b, int64_t l, const float* __restrict__ dy) {
      const FirstConvRows& cv = g->conv;
      std::copy(dy, dy + g->o, dyb.data() + rows * g->o);
      float* __restrict__ xr = xb.data() + rows * cv.k;
      for (int64_t j = 0; j < cv.k; ++j) {
        const int64_t t = cv.s * l + j - cv.p;
        xr[j] = t < 0 || t >= cv.T ? 0.0f : cv.x[b * cv.T + t];
      }
      if (++rows == kFlushRows) Flush();
    }
    void Flush() {
      if (rows == 0) return;
      if (g->conv.k == 6) {
        AccumulateTaps<6>(rows, xb.data(), dyb.data(), g->o, d.data());
      } else {
        for (int r = 0; r < rows; ++r)
          for (int64_t j = 0; j < g->conv.k; ++j)
            for (int64_t c = 0; c < g->o; ++c) d[j * g->o + c] += xb[r * g->conv.k + j] * dyb[r * g->o + c];
      }
      rows = 0;
    }
    void Done() {
      Flush();
      std::copy(d.begin(), d.end(), g->acc.data() + part * d.size());
    }
  };
  Writer Part(int64_t part) {
    return Writer{this, part, std::vector<float>(kFlushRows * o), std::vector<float>(kFlushRows * conv.k),
                  std::vector<double>(conv.k * o, 0.0)};
  }
  void Zero(int64_t) const {}
  at::Tensor Result(const at::TensorOptions& opts) const {     // [o, k]
    const int64_t k = conv.k;
    auto gw = at::empty({o, k}, opts);
    float* gwp = Data<float>(gw);
    for (int64_t j = 0; j < k; ++j)
      for (int64_t c = 0; c < o; ++c) {
        double v = 0;
        for (int64_t q = 0; q < parts; ++q) v += acc[(q * k + j) * o + c];
        gwp[c * k + j] = static_cast<float>(v);
      }
    return gw;
  }
};

// fn(b, l, scratch, writers...) over every row, one ForRowBlocks part per thread, each with its
// own writer per sink and `floats` floats of scratch.
template <typename F, typename... Sinks>
void ForRowsInto(int64_t B, int64_t L, int64_t floats, const F& fn, Sinks&... sinks) {
  (sinks.Zero(B), ...);
  ForRowBlocks(B * L, [&](int64_t part, int64_t r0, int64_t r1) {
    std::vector<float> scratch(floats);
    auto writers = std::make_tuple(sinks.Part(part)...);
    std::apply([&](auto&... w) {
      RowPos pos(r0, L);
      for (int64_t r = r0; r < r1; ++r, pos.Next()) fn(pos.b, pos.l, scratch.data(), w...);
      (w.Done(), ...);
    }, writers);
  });
}

// Pass 2 (conv + BN + ReLU): dy of every row, once, into the sink. Returns (dgamma, dbeta).
template <typename TG, typename Src, typename Sink>
std::vector<at::Tensor> BnReluBackward(int64_t B, int64_t L, const Src& src, const at::Tensor& mean,
                                       const at::Tensor& rstd, const at::Tensor& gamma, const at::Tensor& beta,
                                       const at::Tensor& gout, int64_t row0, Sink& sink) {
  const int64_t o = gamma.size(0), R = gout.size(1);
  const int64_t Lw = std::min(L, R - row0);     // rows past Lw were never read: zero gradient
  const TG* gp = Data<TG>(gout);
  const GradNorm gn = GradStats(B, L, mean, rstd, gamma, beta, gp, R, row0, src);
  ForRowsInto(B, L, o, [&](int64_t b, int64_t l, float* buf, auto& writer) {
    RowGrad(gn, o, src(b, l), l < Lw ? gp + (b * R + row0 + l) * o : nullptr, buf);
    writer.Put(b, l, buf);
  }, sink);
  return {gn.dgamma, gn.dbeta};
}

// The ResNet block's end, backward: g = dL/d(pre-ReLU sum) feeds both BatchNorms (three sums:
// sum(g), sum(g * xhat2), sum(g * xhat_short)), then dy2 -> conv2's sink and dy_short -> the
// shortcut's (its columns of the concatenated conv1 + shortcut chunk gradient, or the first
// block's weight gradient).
template <typename TZ, typename TG, typename Sink2, typename SinkS>
std::vector<at::Tensor> ResidualBackward(const at::Tensor& y2, const at::Tensor& mean2, const at::Tensor& rstd2,
                                         const at::Tensor& g2, const at::Tensor& b2, const at::Tensor& ycat,
                                         int64_t s_off, const at::Tensor& mean_s, const at::Tensor& rstd_s,
                                         const at::Tensor& gs, const at::Tensor& bs, const at::Tensor& gout,
                                         int64_t row0, Sink2& d2, SinkS& ds) {
  const int64_t B = y2.size(0), L = y2.size(1), o = y2.size(2), R = gout.size(1), rows = B * L;
  const int64_t Lw = std::min(L, R - row0);
  const TG* gp = Data<TG>(gout);
  const StoredRows<TZ> main = Rows(Data<TZ>(y2), L, o);
  const StoredRows<TZ> shortcut{Data<TZ>(ycat), L, o, ycat.size(2), s_off};
  GradNorm n2(mean2, rstd2, g2, b2), ns(mean_s, rstd_s, gs, bs);
  const float* __restrict__ sc = n2.bn.scale.data();
  const float* __restrict__ sh = n2.bn.shift.data();
  const float* __restrict__ ss = ns.bn.scale.data();
  const float* __restrict__ st = ns.bn.shift.data();
  const float* __restrict__ m2 = n2.mean;
  const float* __restrict__ r2 = n2.rstd;
  const float* __restrict__ ms = ns.mean;
  const float* __restrict__ rs = ns.rstd;
  const std::vector<double> sums = RowSums<3>(rows, L, o, [&](int64_t b, int64_t l, float*, float* s) {
    if (l >= Lw) return;
    const TZ* __restrict__ ar = main(b, l);
    const TZ* __restrict__ vr = shortcut(b, l);
    const TG* __restrict__ gr = gp + (b * R + row0 + l) * o;
    float* __restrict__ sg = s;
    float* __restrict__ sa = s + o;
    float* __restrict__ sv = s + 2 * o;
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) {
      const float a = Load(ar[c]), v = Load(vr[c]);
      const float pre = ResidualPre(a, sc[c], sh[c], v, ss[c], st[c]);
      const float gv = Load(gr[c]);
      const float g = pre > 0.0f ? gv : 0.0f;
      sg[c] += g;
      sa[c] += g * ((a - m2[c]) * r2[c]);
      sv[c] += g * ((v - ms[c]) * rs[c]);
    }
  });
  n2.Finish(sums.data(), sums.data() + o, rows);
  ns.Finish(sums.data(), sums.data() + 2 * o, rows);
  const float* __restrict__ aa = n2.ya.data();
  const float* __restrict__ a0 = n2.y0.data();
  const float* __restrict__ va = ns.ya.data();
  const float* __restrict__ v0 = ns.y0.data();
  ForRowsInto(B, L, 2 * o, [&](int64_t b, int64_t l, float* buf, auto& wr_2, auto& wr_s) {
    const TZ* __restrict__ ar = main(b, l);
    const TZ* __restrict__ vr = shortcut(b, l);
    float* __restrict__ dya = buf;
    float* __restrict__ dyv = buf + o;
    if (l < Lw) {
      const TG* __restrict__ gr = gp + (b * R + row0 + l) * o;
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) {
        const float a = Load(ar[c]), v = Load(vr[c]);
        const float pre = ResidualPre(a, sc[c], sh[c], v, ss[c], st[c]);
        const float gv = Load(gr[c]);
        const float g = pre > 0.0f ? gv : 0.0f;
        dya[c] = sc[c] * g + aa[c] * a + a0[c];
        dyv[c] = ss[c] * g + va[c] * v + v0[c];
      }
    } else {
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) {
        dya[c] = aa[c] * Load(ar[c]) + a0[c];
        dyv[c] = va[c] * Load(vr[c]) + v0[c];
      }
    }
    wr_2.Put(b, l, dya);
    wr_s.Put(b, l, dyv);
  }, d2, ds);
  return {n2.dgamma, n2.dbeta, ns.dgamma, ns.dbeta};
}

// Pass 2 (first conv): dy straight into the weight gradient; y: channels [y_off, y_off + o) of
// y, in the dtype of gout. Returns (gw [o, k], dgamma, dbeta).
template <typename TG>
std::vector<at::Tensor> BackwardFirst(const FirstConvRows& conv, const at::Tensor& y, int64_t y_off,
                                      const at::Tensor& mean, const at::Tensor& rstd, const at::Tensor& gamma,
                                      const at::Tensor& beta, const at::Tensor& gout, int64_t row0) {
  const int64_t B = y.size(0), L = conv.L, o = gamma.size(0);
  const StoredRows<TG> src{Data<TG>(y), L, o, y.size(2), y_off};
  FirstGrad sink(conv, o, B * L);
  const std::vector<at::Tensor> bn = BnReluBackward<TG>(B, L, src, mean, rstd, gamma, beta, gout, row0, sink);
  return {sink.Result(gamma.options()), bn[0], bn[1]};
}

// torch's adaptive pooling window [start, end) of output row i of `rows` over `L` inputs.
inline int64_t WinStart(int64_t i, int64_t L, int64_t rows) { return i * L / rows; }
inline int64_t WinEnd(int64_t i, int64_t L, int64_t rows) { return ((i + 1) * L + rows - 1) / rows; }

void CheckAffine(const at::Tensor& gamma, const at::Tensor& beta) {
  Check(gamma.dim() == 1 && gamma.scalar_type() == at::kFloat && beta.scalar_type() == at::kFloat &&
            gamma.is_contiguous() && beta.is_contiguous() && beta.sizes() == gamma.sizes(),
        "gamma / beta must be contiguous float [o]");
}

void CheckStats(const at::Tensor& mean, const at::Tensor& rstd, int64_t o) {
  Check(mean.dim() == 1 && rstd.dim() == 1 && mean.size(0) == o && rstd.size(0) == o && mean.is_contiguous() &&
            rstd.is_contiguous() && mean.scalar_type() == at::kFloat && rstd.scalar_type() == at::kFloat,
        "mean / rstd must be contiguous float [o]");
}

bool IsBf16(const at::Tensor& t, const char* what) {
  Check(t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kFloat, what);
  return t.scalar_type() == at::kBFloat16;
}

// f(float{}) or f(uint16_t{}) (bfloat16 bits): the storage type of t as a template argument.
template <typename F>
std::vector<at::Tensor> WithType(const at::Tensor& t, const char* what, const F& f) {
  if (IsBf16(t, what)) return f(uint16_t{});
  return f(float{});
}

FirstConvRows FirstSource(const at::Tensor& x, const at::Tensor& wt, int64_t s, int64_t p, int64_t L) {
  Check(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == at::kFloat, "x must be contiguous float [B, T]");
  Check(wt.dim() == 2 && wt.is_contiguous() && wt.scalar_type() == at::kFloat, "w must be contiguous float [k, o]");
  Check(s >= 1 && p >= 0 && L >= 1 && s * (L - 1) + wt.size(0) <= x.size(1) + 2 * p && wt.size(1) % 4 == 0,
        "first conv geometry (channels must be a multiple of 4)");
  return FirstConvRows{Data<float>(x), Data<float>(wt), x.size(1), L, s, p, wt.size(0), wt.size(1)};
}

// out [B, R, o_out]: the next conv's padded input, o_out <= the channels computed.
void CheckOut(const at::Tensor& out, int64_t B, int64_t o, int64_t row0) {
  Check(out.dim() == 3 && out.is_contiguous() && out.size(0) == B && out.size(2) <= o && out.size(2) >= 1 &&
            row0 >= 0 && row0 < out.size(1), "shape mismatch");
}

// gz [B, L + m - 1, m * P] receiving channels [off, off + o) of every piece.
template <typename TZ>
ChunkGrad<TZ> GradInto(const at::Tensor& gz, int64_t B, int64_t L, int64_t m, int64_t off, int64_t o,
                       int64_t shift = 0) {
  Check(gz.dim() == 3 && gz.is_contiguous() && m >= 1 && shift >= 0 && 2 * shift < m && gz.size(0) == B &&
            gz.size(1) == L + m - 1 - 2 * shift && gz.size(2) % m == 0 && off >= 0 && off + o <= gz.size(2) / m,
        "gz shape mismatch");
  return ChunkGrad<TZ>{Data<TZ>(gz), L, gz.size(1), m, gz.size(2) / m, off, o, shift};
}

// gout [B, R, o] with row0 inside it.
void CheckGout(const at::Tensor& gout, int64_t B, int64_t o, int64_t row0) {
  Check(gout.dim() == 3 && gout.is_contiguous() && gout.size(0) == B && gout.size(2) == o && row0 >= 0 &&
            row0 < gout.size(1), "gout shape mismatch");
}

}  // namespace

// z [B, L + m - 1, m * o] chunk products -> (y [B, L, o], mean, rstd, var); out gets
// relu(bn(y)) of the first out.size(2) channels. var: the biased batch variance (for BN
// calibration; the backward uses rstd).
std::vector<at::Tensor> chunk_bn_relu_forward(const at::Tensor& z, int64_t L, int64_t m, const at::Tensor& gamma,
                                              const at::Tensor& beta, double eps, at::Tensor out, int64_t row0) {
  CheckAffine(gamma, beta);
  const int64_t o = gamma.size(0);
  Check(z.dim() == 3 && z.is_contiguous() && m >= 1 && L >= 1 && z.size(2) == m * o && z.size(1) == L + m - 1,
        "shape mismatch");
  CheckOut(out, z.size(0), o, row0);
  return WithType(z, "z: float or bfloat16", [&](auto tz) {
    return WithType(out, "out: float or bfloat16", [&](auto to) {
      return Forward<decltype(tz), decltype(to)>(z, L, m, gamma, beta, eps, out, row0);
    });
  });
}

// Gradient of a conv + BN + ReLU whose output y is channels [y_off, y_off + o) of y (o =
// gamma.size(0)), written into channels [gz_off, gz_off + o) of every piece of the chunk
// gradient gz. Returns (dgamma, dbeta).
std::vector<at::Tensor> chunk_bn_relu_backward(const at::Tensor& y, int64_t y_off, const at::Tensor& mean,
                                               const at::Tensor& rstd, const at::Tensor& gamma, const at::Tensor& beta,
                                               const at::Tensor& gout, int64_t row0, at::Tensor gz, int64_t m,
                                               int64_t gz_off) {
  CheckAffine(gamma, beta);
  const int64_t o = gamma.size(0);
  CheckStats(mean, rstd, o);
  Check(y.dim() == 3 && y.is_contiguous() && y_off >= 0 && y_off + o <= y.size(2), "y must be contiguous [B, L, >= o]");
  const int64_t B = y.size(0), L = y.size(1);
  CheckGout(gout, B, o, row0);
  return WithType(y, "y: float or bfloat16", [&](auto ty) {
    using TY = decltype(ty);
    const StoredRows<TY> src{Data<TY>(y), L, o, y.size(2), y_off};
    return WithType(gout, "gout: float or bfloat16", [&](auto tg) {
      return WithType(gz, "gz: float or bfloat16", [&](auto tz) {
        ChunkGrad<decltype(tz)> sink = GradInto<decltype(tz)>(gz, B, L, m, gz_off, o);
        return BnReluBackward<decltype(tg)>(B, L, src, mean, rstd, gamma, beta, gout, row0, sink);
      });
    });
  });
}

// wt: the first conv's weight as [k, o] (contiguous over channels).
std::vector<at::Tensor> first_bn_relu_forward(const at::Tensor& x, const at::Tensor& wt, int64_t s, int64_t p, int64_t L,
                                              const at::Tensor& gamma, const at::Tensor& beta, double eps,
                                              at::Tensor out, int64_t row0) {
  CheckAffine(gamma, beta);
  const FirstConvRows src = FirstSource(x, wt, s, p, L);
  Check(src.o == gamma.size(0), "shape mismatch");
  CheckOut(out, x.size(0), src.o, row0);
  if (IsBf16(out, "out: float or bfloat16")) return ForwardFirst<uint16_t>(src, x.size(0), gamma, beta, eps, out, row0);
  return ForwardFirst<float>(src, x.size(0), gamma, beta, eps, out, row0);
}

// y: the stored first-conv output, channels [y_off, y_off + o) (o = gamma.size(0)) in the dtype
// of gout. Returns (gw [o, k], dgamma, dbeta).
std::vector<at::Tensor> first_bn_relu_backward(const at::Tensor& x, const at::Tensor& wt, int64_t s, int64_t p,
                                               const at::Tensor& y, int64_t y_off, const at::Tensor& mean,
                                               const at::Tensor& rstd, const at::Tensor& gamma, const at::Tensor& beta,
                                               const at::Tensor& gout, int64_t row0) {
  CheckAffine(gamma, beta);
  const int64_t o = gamma.size(0);
  Check(y.dim() == 3 && y.is_contiguous() && y.size(0) == x.size(0) && y.scalar_type() == gout.scalar_type() &&
            y_off >= 0 && y_off + o <= y.size(2), "y must be contiguous [B, L, >= y_off + o] in the dtype of gout");
  const FirstConvRows conv = FirstSource(x, wt, s, p, y.size(1));
  CheckStats(mean, rstd, o);
  CheckGout(gout, x.size(0), o, row0);
  if (IsBf16(gout, "gout: float or bfloat16")) return BackwardFirst<uint16_t>(conv, y, y_off, mean, rstd, gamma, beta, gout, row0);
  return BackwardFirst<float>(conv, y, y_off, mean, rstd, gamma, beta, gout, row0);
}

// ResNet block end: z2 [B, L + m - 1 - 2 * shift, m * o] (conv2's chunk products; shift = its
// padding when its input was not padded), ycat [B, L, >= s_off + o] in the same dtype holding
// the shortcut conv's output at channel s_off, with its statistics.
std::vector<at::Tensor> residual_forward(const at::Tensor& z2, int64_t L, int64_t m, int64_t shift, const at::Tensor& g2,
                                         const at::Tensor& b2, double eps, const at::Tensor& ycat, int64_t s_off,
                                         const at::Tensor& mean_s, const at::Tensor& rstd_s, const at::Tensor& gs,
                                         const at::Tensor& bs, at::Tensor out, int64_t row0) {
  CheckAffine(g2, b2);
  CheckAffine(gs, bs);
  const int64_t o = g2.size(0);
  CheckStats(mean_s, rstd_s, o);
  Check(gs.size(0) == o && z2.dim() == 3 && z2.is_contiguous() && m >= 1 && L >= 1 && z2.size(2) == m * o &&
            shift >= 0 && 2 * shift < m && z2.size(1) == L + m - 1 - 2 * shift, "shape mismatch");
  Check(ycat.dim() == 3 && ycat.is_contiguous() && ycat.scalar_type() == z2.scalar_type() && ycat.size(0) == z2.size(0) &&
            ycat.size(1) == L && s_off >= 0 && s_off + o <= ycat.size(2), "ycat must be [B, L, >= s_off + o] in z2's dtype");
  CheckOut(out, z2.size(0), o, row0);
  Check(out.size(2) == o, "shape mismatch");
  return WithType(z2, "z2: float or bfloat16", [&](auto tz) {
    return WithType(out, "out: float or bfloat16", [&](auto to) {
      return ResidualForward<decltype(tz), decltype(to)>(z2, L, m, shift, g2, b2, eps, ycat, s_off, mean_s, rstd_s, gs, bs,
                                                         out, row0);
    });
  });
}

void CheckResidualBackward(const at::Tensor& y2, const at::Tensor& mean2, const at::Tensor& rstd2,
                           const at::Tensor& g2, const at::Tensor& b2, const at::Tensor& ycat, int64_t s_off,
                           const at::Tensor& mean_s, const at::Tensor& rstd_s, const at::Tensor& gs,
                           const at::Tensor& bs, const at::Tensor& gout, int64_t row0, const at::Tensor& gz2) {
  CheckAffine(g2, b2);
  CheckAffine(gs, bs);
  const int64_t o = g2.size(0);
  CheckStats(mean2, rstd2, o);
  CheckStats(mean_s, rstd_s, o);
  Check(gs.size(0) == o && y2.dim() == 3 && y2.is_contiguous() && y2.size(2) == o, "y2 must be contiguous [B, L, o]");
  Check(ycat.dim() == 3 && ycat.is_contiguous() && ycat.scalar_type() == y2.scalar_type() &&
            ycat.size(0) == y2.size(0) && ycat.size(1) == y2.size(1) && s_off >= 0 && s_off + o <= ycat.size(2),
        "ycat must be [B, L, >= s_off + o] in y2's dtype");
  Check(gz2.scalar_type() == y2.scalar_type(), "gz2 must have y2's dtype");
  CheckGout(gout, y2.size(0), o, row0);
}

// Gradient of residual_forward: conv2's chunk gradient into gz2 (z2's shape and dtype) and the
// shortcut's into channels [s_off, s_off + o) of the pieces of gzc [B, L + m1 - 1, m1 * P].
// Returns (dgamma2, dbeta2, dgamma_short, dbeta_short).
std::vector<at::Tensor> residual_backward(const at::Tensor& y2, const at::Tensor& mean2, const at::Tensor& rstd2,
                                          const at::Tensor& g2, const at::Tensor& b2, const at::Tensor& ycat,
                                          int64_t s_off, const at::Tensor& mean_s, const at::Tensor& rstd_s,
                                          const at::Tensor& gs, const at::Tensor& bs, const at::Tensor& gout,
                                          int64_t row0, at::Tensor gz2, int64_t m2, int64_t shift2, at::Tensor gzc,
                                          int64_t m1) {
  CheckResidualBackward(y2, mean2, rstd2, g2, b2, ycat, s_off, mean_s, rstd_s, gs, bs, gout, row0, gz2);
  const int64_t B = y2.size(0), L = y2.size(1), o = y2.size(2);
  return WithType(y2, "y2: float or bfloat16", [&](auto tz) {
    using TZ = decltype(tz);
    const ChunkGrad<TZ> d2 = GradInto<TZ>(gz2, B, L, m2, 0, o, shift2);
    return WithType(gout, "gout: float or bfloat16", [&](auto tg) {
      return WithType(gzc, "gzc: float or bfloat16", [&](auto tc) {
        ChunkGrad<decltype(tc)> ds = GradInto<decltype(tc)>(gzc, B, L, m1, s_off, o);
        return ResidualBackward<TZ, decltype(tg)>(y2, mean2, rstd2, g2, b2, ycat, s_off, mean_s, rstd_s, gs, bs, gout,
                                                  row0, d2, ds);
      });
    });
  });
}

// The first ResNet block's residual_backward: the shortcut is a first conv (x [B, T], weights
// wt [k, >= o] as for first_forward), so its gradient goes straight into its weight gradient.
// Returns (dgamma2, dbeta2, dgamma_short, dbeta_short, gw_short [o, k]).
std::vector<at::Tensor> residual_backward_first(const at::Tensor& y2, const at::Tensor& mean2, const at::Tensor& rstd2,
                                                const at::Tensor& g2, const at::Tensor& b2, const at::Tensor& ycat,
                                                int64_t s_off, const at::Tensor& mean_s, const at::Tensor& rstd_s,
                                                const at::Tensor& gs, const at::Tensor& bs, const at::Tensor& gout,
                                                int64_t row0, at::Tensor gz2, int64_t m2, int64_t shift2, const at::Tensor& x,
                                                const at::Tensor& wt, int64_t s, int64_t p) {
  CheckResidualBackward(y2, mean2, rstd2, g2, b2, ycat, s_off, mean_s, rstd_s, gs, bs, gout, row0, gz2);
  const int64_t B = y2.size(0), L = y2.size(1), o = y2.size(2);
  const FirstConvRows conv = FirstSource(x, wt, s, p, L);
  Check(x.size(0) == B, "x shape mismatch");
  return WithType(y2, "y2: float or bfloat16", [&](auto tz) {
    using TZ = decltype(tz);
    const ChunkGrad<TZ> d2 = GradInto<TZ>(gz2, B, L, m2, 0, o, shift2);
    return WithType(gout, "gout: float or bfloat16", [&](auto tg) {
      FirstGrad ds(conv, o, B * L);
      std::vector<at::Tensor> r = ResidualBackward<TZ, decltype(tg)>(y2, mean2, rstd2, g2, b2, ycat, s_off, mean_s,
                                                                     rstd_s, gs, bs, gout, row0, d2, ds);
      r.push_back(ds.Result(g2.options()));
      return r;
    });
  });
}

// Adaptive max pool over time: h [B, L, o] -> pooled [B, rows, o], pooled[b, i, c] = max of
// h[b, t, c] over row i's window. The backward finds the arg-max again from h (the first
// maximum, as torch's adaptive_max_pool) instead of storing indices.
at::Tensor pool_rows_forward(const at::Tensor& h, int64_t rows) {
  Check(h.dim() == 3 && h.is_contiguous() && h.scalar_type() == at::kFloat, "h must be contiguous float [B, L, o]");
  const int64_t B = h.size(0), L = h.size(1), o = h.size(2);
  Check(rows >= 1 && L >= 1, "pool shape mismatch");
  auto pooled = at::empty({B, rows, o}, h.options());
  const float* hp = Data<float>(h);
  float* pp = Data<float>(pooled);
  at::parallel_for(0, B, 16, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t s = WinStart(i, L, rows), e = WinEnd(i, L, rows);
        float* __restrict__ bv = pp + (b * rows + i) * o;
        const float* __restrict__ h0 = hp + (b * L + s) * o;
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) bv[c] = h0[c];
        for (int64_t t = s + 1; t < e; ++t) {
          const float* __restrict__ ht = hp + (b * L + t) * o;
#pragma GCC ivdep
          for (int64_t c = 0; c < o; ++c) bv[c] = std::max(bv[c], ht[c]);
        }
      }
  });
  return pooled;
}

at::Tensor pool_rows_backward(const at::Tensor& gpooled, const at::Tensor& h, int64_t rows) {
  Check(h.dim() == 3 && h.is_contiguous() && h.scalar_type() == at::kFloat && gpooled.dim() == 3 &&
            gpooled.scalar_type() == at::kFloat && gpooled.size(0) == h.size(0) && gpooled.size(1) == rows &&
            gpooled.size(2) == h.size(2), "pool backward shape mismatch");
  const auto g = gpooled.contiguous();
  const int64_t B = h.size(0), L = h.size(1), o = h.size(2);
  auto gh = at::zeros({B, L, o}, g.options());
  const float* gp = Data<float>(g);
  const float* hp = Data<float>(h);
  float* dp = Data<float>(gh);
  at::parallel_for(0, B, 16, [&](int64_t b0, int64_t b1) {
    std::vector<float> best(o);
    std::vector<int32_t> at(o);
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t s = WinStart(i, L, rows), e = WinEnd(i, L, rows);
        float* __restrict__ bv = best.data();
        int32_t* __restrict__ ai = at.data();
        const float* __restrict__ h0 = hp + (b * L + s) * o;
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) {
          bv[c] = h0[c];
          ai[c] = static_cast<int32_t>(s);
        }
        for (int64_t t = s + 1; t < e; ++t) {
          const float* __restrict__ ht = hp + (b * L + t) * o;
          const int32_t ti = static_cast<int32_t>(t);
#pragma GCC ivdep
          for (int64_t c = 0; c < o; ++c) {
            const bool gt = ht[c] > bv[c];      // strict: ties keep the first row
            bv[c] = gt ? ht[c] : bv[c];
            ai[c] = gt ? ti : ai[c];
          }
        }
        const float* __restrict__ gr = gp + (b * rows + i) * o;
        for (int64_t t = s; t < e; ++t) {
          float* __restrict__ dt = dp + (b * L + t) * o;
          const int32_t ti = static_cast<int32_t>(t);
#pragma GCC ivdep
          for (int64_t c = 0; c < o; ++c) dt[c] += ai[c] == ti ? gr[c] : 0.0f;
        }
      }
  });
  return gh;
}

// train/csrc/cpu_cache.cpp
bool install_cpu_cache(int64_t cap_bytes);
std::vector<int64_t> cpu_cache_stats();
void cpu_cache_trim();

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("forward", &chunk_bn_relu_forward, "chunk sum + BatchNorm (batch statistics) + ReLU, forward");
  mod.def("backward", &chunk_bn_relu_backward, "gradient of forward, written into (columns of) a chunk-product gradient");
  mod.def("first_forward", &first_bn_relu_forward, "first conv (1 input channel) + BatchNorm + ReLU, forward");
  mod.def("first_backward", &first_bn_relu_backward, "gradient of first_forward: conv weight, gamma, beta");
  mod.def("residual_forward", &residual_forward, "ResNet block end: conv2 chunk sum + BN, + BN(shortcut), ReLU");
  mod.def("residual_backward", &residual_backward, "gradient of residual_forward into both chunk gradients");
  mod.def("residual_backward_first", &residual_backward_first, "residual_backward of the first block (1-channel shortcut)");
  mod.def("pool_forward", &pool_rows_forward, "adaptive max pool over time");
  mod.def("pool_backward", &pool_rows_backward, "gradient of pool_forward (to the first arg-max)");
  mod.def("install_cpu_cache", &install_cpu_cache, "caching CPU allocator for large blocks (cap in bytes)");
  mod.def("cpu_cache_stats", &cpu_cache_stats, "(cached bytes, cap, hits, misses, live blocks)");
  mod.def("cpu_cache_trim", &cpu_cache_trim, "free every cached block");
}
