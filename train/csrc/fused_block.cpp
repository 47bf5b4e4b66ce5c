// Fused element-wise work of the ``fused`` training layout (train/models/fused.py): for one
// slimmable conv block, the conv output's training-mode BatchNorm and ReLU in two passes
// forward and their gradient in two passes backward, reading and writing exactly the buffers
// the GEMMs around them use (padding rows zeroed here, so nothing is padded, filled or copied
// again); the first conv (one input channel) computed inside; adaptive max pooling.
//
// Shapes (all contiguous, rows = B * L):
//   z     [B, n, m*o]   chunk products of a conv (float or bfloat16), n = L + m - 1
//   y     [B, L, o]     conv output = sum_q z[:, l + q, q*o:(q+1)*o] (the first conv: computed
//                       here from x), saved for backward in the GEMM dtype (bfloat16 mode: bf16)
//   out   [B, R, o]     the next conv's padded input: rows [row0, row0 + L) = relu(bn(y)), the
//                       other rows zero; rows past R are cropped (the next conv never reads them)
//   gz    [B, n, m*o]   gradient of z (the backward GEMMs' input), zero where no output reads it
// Statistics: per-channel sums in float over blocks of 64 rows, then double (no cancellation).
// The per-channel inner loops carry `#pragma GCC ivdep`: their pointers never overlap, and
// without it gcc gives up vectorizing them (too many run-time alias checks).
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
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

// Per-channel sums of two quantities over many rows: float sums over blocks of kFlushRows rows
// (vectorizable), added to double totals after each block.
class ChannelSums {
 public:
  static constexpr int kFlushRows = 64;
  explicit ChannelSums(int64_t o) : o_(o), f_(2 * o, 0.0f), d_(2 * o, 0.0) {}
  float* a() { return f_.data(); }
  float* b() { return f_.data() + o_; }
  void EndRow() {
    if (++rows_ == kFlushRows) Flush();
  }
  void Flush() {
    for (int64_t c = 0; c < 2 * o_; ++c) {
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

// Two per-channel sums over rows [0, rows) (flat row r = b * L + l), one part per thread,
// merged in a fixed order (deterministic for a given thread count). add(b, l, scratch, sa, sb)
// adds row (b, l)'s contribution to sa[c] and sb[c]. Returns the totals, sa then sb.
template <typename AddRow>
std::vector<double> RowSums(int64_t rows, int64_t L, int64_t o, const AddRow& add) {
  const int64_t parts = Parts(rows);
  std::vector<double> acc(static_cast<size_t>(parts * 2 * o), 0.0);
  ForRowBlocks(rows, [&](int64_t part, int64_t r0, int64_t r1) {
    ChannelSums sums(o);
    std::vector<float> scratch(o);
    RowPos pos(r0, L);
    for (int64_t r = r0; r < r1; ++r, pos.Next()) {
      add(pos.b, pos.l, scratch.data(), sums.a(), sums.b());
      sums.EndRow();
    }
    sums.Flush();
    std::copy(sums.totals(), sums.totals() + 2 * o, acc.data() + part * 2 * o);
  });
  std::vector<double> total(static_cast<size_t>(2 * o), 0.0);
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t c = 0; c < 2 * o; ++c) total[c] += acc[p * 2 * o + c];
  return total;
}

// ---- conv output row sources: src(b, l, scratch) -> the o floats of output row (b, l) ----

// A stored conv output y [B*L, o] (float, or bfloat16 in bfloat16 mode: half the traffic of
// the four passes that read it; converted to float one row at a time).
template <typename TY>
struct StoredRows {
  const TY* y;
  int64_t L, o;
  const float* operator()(int64_t b, int64_t l, float* scratch) const {
    const TY* __restrict__ yr = y + (b * L + l) * o;
    if constexpr (std::is_same_v<TY, float>) {
      return yr;
    } else {
      float* __restrict__ f = scratch;
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) f[c] = Load(yr[c]);
      return f;
    }
  }
};

// Stores row (b, l) of a conv output computed in float (in scratch) into y; returns scratch.
template <typename TY>
inline const float* StoreRow(TY* y, int64_t L, int64_t o, int64_t b, int64_t l, const float* __restrict__ row) {
  TY* __restrict__ yr = y + (b * L + l) * o;
#pragma GCC ivdep
  for (int64_t c = 0; c < o; ++c) Store(yr + c, row[c]);
  return row;
}

// The shifted sum of chunk products (pass 1 of the forward), stored into y as it goes.
template <typename TZ>
struct ChunkSumRows {
  const TZ* z;
  TZ* y;
  int64_t L, n, m, o;
  const float* operator()(int64_t b, int64_t l, float* scratch) const {
    float* __restrict__ yr = scratch;
    const TZ* __restrict__ z0 = z + (b * n + l) * m * o;
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) yr[c] = Load(z0[c]);
    for (int64_t q = 1; q < m; ++q) {
      const TZ* __restrict__ zq = z + (b * n + l + q) * m * o + q * o;
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) yr[c] += Load(zq[c]);
    }
    return StoreRow(y, L, o, b, l, yr);
  }
};

// The first conv (one input channel), recomputed on demand: y[b, l, c] = sum_j x[b, s*l+j-p] w[c, j]
// (six multiply-adds per output: cheaper than storing and re-reading y).
struct FirstConvRows {
  const float* x;     // [B, T]
  const float* wt;    // [k, o]
  int64_t T, L, s, p, k, o;
  const float* operator()(int64_t b, int64_t l, float* scratch) const {
    const int64_t j0 = std::max<int64_t>(0, p - s * l), j1 = std::min<int64_t>(k, T + p - s * l);
    const float* __restrict__ xr = x + b * T + s * l - p;      // xr[j] valid for j in [j0, j1)
    float* __restrict__ yr = scratch;
    int64_t c0 = 0;
    // blocks of 16 channels accumulate in registers across the taps
    for (; c0 + 16 <= o; c0 += 16) {
      float acc[16] = {};
      for (int64_t j = j0; j < j1; ++j) {
        const float xv = xr[j];
        const float* __restrict__ wj = wt + j * o + c0;
        for (int c = 0; c < 16; ++c) acc[c] += xv * wj[c];
      }
      for (int c = 0; c < 16; ++c) yr[c0 + c] = acc[c];
    }
    for (; c0 < o; c0 += 4) {      // channel counts are multiples of 4 (make_divisible)
      float acc[4] = {};
      for (int64_t j = j0; j < j1; ++j) {
        const float xv = xr[j];
        const float* __restrict__ wj = wt + j * o + c0;
        for (int c = 0; c < 4; ++c) acc[c] += xv * wj[c];
      }
      for (int c = 0; c < 4; ++c) yr[c0 + c] = acc[c];
    }
    return yr;
  }
};

// ---- forward ----

struct Norm {
  at::Tensor mean, rstd;                 // float [o], saved for backward
  std::vector<float> scale, shift;       // gamma * rstd, beta - mean * gamma * rstd
};

// Pass 1: batch statistics of the conv output (biased variance, as BatchNorm normalizes).
template <typename Src>
Norm ConvStats(int64_t rows, int64_t L, const at::Tensor& gamma, const at::Tensor& beta, double eps, const Src& src) {
  const int64_t o = gamma.size(0);
  const std::vector<double> sums = RowSums(rows, L, o, [&](int64_t b, int64_t l, float* scratch,
                                                          float* __restrict__ s1, float* __restrict__ s2) {
    const float* __restrict__ yr = src(b, l, scratch);
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) {
      s1[c] += yr[c];
      s2[c] += yr[c] * yr[c];
    }
  });
  const double* s1 = sums.data();
  const double* s2 = s1 + o;
  Norm nm{at::empty({o}, gamma.options()), at::empty({o}, gamma.options()), std::vector<float>(o),
          std::vector<float>(o)};
  float* mp = Data<float>(nm.mean);
  float* rp = Data<float>(nm.rstd);
  const float* gp = Data<float>(gamma);
  const float* bp = Data<float>(beta);
  for (int64_t c = 0; c < o; ++c) {
    const double mu = s1[c] / rows;
    const double var = std::max(0.0, s2[c] / rows - mu * mu);
    mp[c] = static_cast<float>(mu);
    rp[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
    nm.scale[c] = gp[c] * rp[c];
    nm.shift[c] = bp[c] - mp[c] * nm.scale[c];
  }
  return nm;
}

// Pass 2: out rows [row0, row0 + L) = relu(scale * y + shift), the other rows zero.
template <typename TO, typename Src>
void WriteActivations(int64_t B, int64_t L, const Norm& nm, at::Tensor& out, int64_t row0, const Src& src) {
  const int64_t R = out.size(1), o = out.size(2);
  const int64_t Lw = std::min(L, R - row0);     // output rows the next conv reads
  TO* op = Data<TO>(out);
  const float* __restrict__ sc = nm.scale.data();
  const float* __restrict__ sh = nm.shift.data();
  at::parallel_for(0, B * R, 64, [&](int64_t i0, int64_t i1) {
    std::vector<float> scratch(o);
    RowPos pos(i0, R);
    for (int64_t i = i0; i < i1; ++i, pos.Next()) {
      const int64_t b = pos.b, j = pos.l - row0;
      TO* __restrict__ orow = op + i * o;
      if (j < 0 || j >= Lw) {
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) Store(orow + c, 0.0f);
        continue;
      }
      const float* __restrict__ yr = src(b, j, scratch.data());
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) Store(orow + c, std::max(0.0f, yr[c] * sc[c] + sh[c]));
    }
  });
}

// y is stored in the GEMM dtype (TZ).
template <typename TZ, typename TO>
std::vector<at::Tensor> Forward(const at::Tensor& z, int64_t L, int64_t m, const at::Tensor& gamma,
                                const at::Tensor& beta, double eps, at::Tensor& out, int64_t row0) {
  const int64_t B = z.size(0), n = z.size(1), o = gamma.size(0);
  auto y = at::empty({B, L, o}, z.options());
  const Norm nm = ConvStats(B * L, L, gamma, beta, eps, ChunkSumRows<TZ>{Data<TZ>(z), Data<TZ>(y), L, n, m, o});
  WriteActivations<TO>(B, L, nm, out, row0, StoredRows<TZ>{Data<TZ>(y), L, o});
  return {y, nm.mean, nm.rstd};
}

// The first conv's output is computed once, stored (in the dtype of `out`) and read back:
// recomputing it in the other three passes measured slower.
template <typename TO>
std::vector<at::Tensor> ForwardFirst(const FirstConvRows& conv, int64_t B, const at::Tensor& gamma,
                                     const at::Tensor& beta, double eps, at::Tensor& out, int64_t row0) {
  const int64_t L = conv.L, o = conv.o;
  auto y = at::empty({B, L, o}, out.options());
  TO* yp = Data<TO>(y);
  const Norm nm = ConvStats(B * L, L, gamma, beta, eps, [&](int64_t b, int64_t l, float* scratch) {
    return StoreRow(yp, L, o, b, l, conv(b, l, scratch));
  });
  WriteActivations<TO>(B, L, nm, out, row0, StoredRows<TO>{yp, L, o});
  return {y, nm.mean, nm.rstd};
}

// ---- backward ----

// Pass 1: g = dL/d(pre-ReLU) (zero for rows the next conv never read); per channel sum(g)
// (= dbeta) and sum(g * xhat) (= dgamma); k1 = mean(g), k2 = mean(g * xhat).
struct GradNorm {
  at::Tensor dgamma, dbeta;
  std::vector<float> scale, shift, k1, k2;
  const float* mean;
  const float* rstd;
};

template <typename TG, typename Src>
GradNorm GradStats(int64_t B, int64_t L, const at::Tensor& mean, const at::Tensor& rstd, const at::Tensor& gamma,
                   const at::Tensor& beta, const TG* gp, int64_t R, int64_t row0, const Src& src) {
  const int64_t o = gamma.size(0), rows = B * L;
  const int64_t Lw = std::min(L, R - row0);
  GradNorm gn{at::empty({o}, gamma.options()), at::empty({o}, gamma.options()), std::vector<float>(o),
              std::vector<float>(o), std::vector<float>(o), std::vector<float>(o), Data<float>(mean),
              Data<float>(rstd)};
  const float* gam = Data<float>(gamma);
  const float* bet = Data<float>(beta);
  for (int64_t c = 0; c < o; ++c) {
    gn.scale[c] = gam[c] * gn.rstd[c];
    gn.shift[c] = bet[c] - gn.mean[c] * gn.scale[c];
  }
  const float* __restrict__ sc = gn.scale.data();
  const float* __restrict__ sh = gn.shift.data();
  const float* __restrict__ mp = gn.mean;
  const float* __restrict__ rp = gn.rstd;
  const std::vector<double> sums = RowSums(rows, L, o, [&](int64_t b, int64_t l, float* scratch,
                                                          float* __restrict__ sg, float* __restrict__ sgx) {
    if (l >= Lw) return;
    const float* __restrict__ yr = src(b, l, scratch);
    const TG* __restrict__ gr = gp + (b * R + row0 + l) * o;
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) {
      const float pre = yr[c] * sc[c] + sh[c];
      const float gv = Load(gr[c]);          // unconditional load: lets the loop vectorize
      const float g = pre > 0.0f ? gv : 0.0f;
      sg[c] += g;
      sgx[c] += g * ((yr[c] - mp[c]) * rp[c]);
    }
  });
  const double* sg = sums.data();
  const double* sgx = sg + o;
  float* dgp = Data<float>(gn.dgamma);
  float* dbp = Data<float>(gn.dbeta);
  for (int64_t c = 0; c < o; ++c) {
    dbp[c] = static_cast<float>(sg[c]);
    dgp[c] = static_cast<float>(sgx[c]);
    gn.k1[c] = static_cast<float>(sg[c] / rows);
    gn.k2[c] = static_cast<float>(sgx[c] / rows);
  }
  return gn;
}

// dy of one row: gamma * rstd * (g - mean(g) - xhat * mean(g * xhat)); gr == nullptr: g = 0.
template <typename TG, typename TD>
inline void RowGrad(const GradNorm& gn, int64_t o, const float* __restrict__ yr, const TG* __restrict__ gr,
                    TD* __restrict__ dst) {
  const float* __restrict__ sc = gn.scale.data();
  const float* __restrict__ sh = gn.shift.data();
  const float* __restrict__ k1 = gn.k1.data();
  const float* __restrict__ k2 = gn.k2.data();
  const float* __restrict__ mp = gn.mean;
  const float* __restrict__ rp = gn.rstd;
  if (gr == nullptr) {
#pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) Store(dst + c, sc[c] * (-k1[c] - (yr[c] - mp[c]) * rp[c] * k2[c]));
    return;
  }
#pragma GCC ivdep
  for (int64_t c = 0; c < o; ++c) {
    const float pre = yr[c] * sc[c] + sh[c];
    const float gv = Load(gr[c]);
    const float g = pre > 0.0f ? gv : 0.0f;
    Store(dst + c, sc[c] * (g - k1[c] - (yr[c] - mp[c]) * rp[c] * k2[c]));
  }
}

// Pass 2 (chunk conv): dy scattered to the m column blocks of gz (row l + q, block q); entries
// no output reads are zero.
template <typename TG, typename TZ>
std::vector<at::Tensor> Backward(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd,
                                 const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& gout,
                                 int64_t row0, int64_t m, at::ScalarType gz_type) {
  const int64_t B = y.size(0), L = y.size(1), o = y.size(2), R = gout.size(1), n = L + m - 1;
  const int64_t Lw = std::min(L, R - row0);     // rows past Lw were never read: zero gradient
  const TG* gp = Data<TG>(gout);
  const StoredRows<TZ> src{Data<TZ>(y), L, o};
  const GradNorm gn = GradStats(B, L, mean, rstd, gamma, beta, gp, R, row0, src);
  auto gz = at::empty({B, n, m * o}, gamma.options().dtype(gz_type));
  TZ* zp = Data<TZ>(gz);
  at::parallel_for(0, B * n, 32, [&](int64_t i0, int64_t i1) {
    std::vector<float> scratch(o);
    RowPos pos(i0, n);
    for (int64_t i = i0; i < i1; ++i, pos.Next()) {
      const int64_t b = pos.b, j = pos.l;
      for (int64_t q = 0; q < m; ++q) {
        TZ* __restrict__ dst = zp + i * m * o + q * o;
        const int64_t l = j - q;
        if (l < 0 || l >= L) {
#pragma GCC ivdep
          for (int64_t c = 0; c < o; ++c) Store(dst + c, 0.0f);
          continue;
        }
        RowGrad(gn, o, src(b, l, scratch.data()), l < Lw ? gp + (b * R + row0 + l) * o : nullptr, dst);
      }
    }
  });
  return {gz, gn.dgamma, gn.dbeta};
}

// Pass 2 (first conv): the weight gradient gw[c, j] = sum_{b,l} dy[b,l,c] x[b, s*l+j-p]
// accumulated directly; no gradient tensor of the conv output is ever written.
template <typename TG>
std::vector<at::Tensor> BackwardFirst(const FirstConvRows& conv, const at::Tensor& y, const at::Tensor& mean,
                                      const at::Tensor& rstd, const at::Tensor& gamma, const at::Tensor& beta,
                                      const at::Tensor& gout, int64_t row0) {
  const int64_t B = y.size(0), L = conv.L, o = conv.o, k = conv.k, R = gout.size(1);
  const int64_t rows = B * L, parts = Parts(rows), Lw = std::min(L, R - row0);
  const TG* gp = Data<TG>(gout);
  const StoredRows<TG> src{Data<TG>(y), L, o};     // y is stored in the dtype of out (= of gout)
  const GradNorm gn = GradStats(B, L, mean, rstd, gamma, beta, gp, R, row0, src);
  std::vector<double> acc(static_cast<size_t>(parts * k * o), 0.0);
  ForRowBlocks(rows, [&](int64_t part, int64_t r0, int64_t r1) {
    std::vector<float> scratch(o), dy(o), f(k * o, 0.0f);
    std::vector<double> d(k * o, 0.0);
    int since_flush = 0;
    RowPos pos(r0, L);
    for (int64_t r = r0; r < r1; ++r, pos.Next()) {
      const int64_t b = pos.b, l = pos.l;
      RowGrad(gn, o, src(b, l, scratch.data()), l < Lw ? gp + (b * R + row0 + l) * o : nullptr, dy.data());
      for (int64_t j = 0; j < k; ++j) {
        const int64_t t = conv.s * l + j - conv.p;
        if (t < 0 || t >= conv.T) continue;
        const float xv = conv.x[b * conv.T + t];
        float* __restrict__ fj = f.data() + j * o;
        const float* __restrict__ dv = dy.data();
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) fj[c] += xv * dv[c];
      }
      if (++since_flush == ChannelSums::kFlushRows || r + 1 == r1) {
        for (int64_t i = 0; i < k * o; ++i) {
          d[i] += f[i];
          f[i] = 0.0f;
        }
        since_flush = 0;
      }
    }
    std::copy(d.begin(), d.end(), acc.data() + part * k * o);
  });
  auto gw = at::empty({o, k}, gamma.options());
  float* gwp = Data<float>(gw);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t c = 0; c < o; ++c) {
      double v = 0;
      for (int64_t q = 0; q < parts; ++q) v += acc[q * k * o + j * o + c];
      gwp[c * k + j] = static_cast<float>(v);
    }
  return {gw, gn.dgamma, gn.dbeta};
}

// torch's adaptive pooling window [start, end) of output row i of `rows` over `L` inputs.
inline int64_t WinStart(int64_t i, int64_t L, int64_t rows) { return i * L / rows; }
inline int64_t WinEnd(int64_t i, int64_t L, int64_t rows) { return ((i + 1) * L + rows - 1) / rows; }

void CheckAffine(const at::Tensor& gamma, const at::Tensor& beta) {
  Check(gamma.dim() == 1 && gamma.scalar_type() == at::kFloat && beta.scalar_type() == at::kFloat &&
            gamma.is_contiguous() && beta.is_contiguous() && beta.sizes() == gamma.sizes(),
        "gamma / beta must be contiguous float [o]");
}

bool IsBf16(const at::Tensor& t, const char* what) {
  Check(t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kFloat, what);
  return t.scalar_type() == at::kBFloat16;
}

FirstConvRows FirstSource(const at::Tensor& x, const at::Tensor& wt, int64_t s, int64_t p, int64_t L) {
  Check(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == at::kFloat, "x must be contiguous float [B, T]");
  Check(wt.dim() == 2 && wt.is_contiguous() && wt.scalar_type() == at::kFloat, "w must be contiguous float [k, o]");
  Check(s >= 1 && p >= 0 && L >= 1 && s * (L - 1) + wt.size(0) <= x.size(1) + 2 * p && wt.size(1) % 4 == 0,
        "first conv geometry (channels must be a multiple of 4)");
  return FirstConvRows{Data<float>(x), Data<float>(wt), x.size(1), L, s, p, wt.size(0), wt.size(1)};
}

}  // namespace

std::vector<at::Tensor> chunk_bn_relu_forward(const at::Tensor& z, int64_t L, int64_t m, const at::Tensor& gamma,
                                              const at::Tensor& beta, double eps, at::Tensor out, int64_t row0) {
  CheckAffine(gamma, beta);
  const int64_t o = gamma.size(0);
  Check(z.dim() == 3 && z.is_contiguous() && out.dim() == 3 && out.is_contiguous(), "z / out must be contiguous 3-D");
  Check(m >= 1 && L >= 1 && z.size(2) == m * o && z.size(1) == L + m - 1 && out.size(0) == z.size(0) &&
            out.size(2) == o && row0 >= 0 && row0 < out.size(1), "shape mismatch");
  const bool zb = IsBf16(z, "z: float or bfloat16"), ob = IsBf16(out, "out: float or bfloat16");
  if (zb && ob) return Forward<uint16_t, uint16_t>(z, L, m, gamma, beta, eps, out, row0);
  if (zb) return Forward<uint16_t, float>(z, L, m, gamma, beta, eps, out, row0);
  if (ob) return Forward<float, uint16_t>(z, L, m, gamma, beta, eps, out, row0);
  return Forward<float, float>(z, L, m, gamma, beta, eps, out, row0);
}

std::vector<at::Tensor> chunk_bn_relu_backward(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd,
                                               const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& gout,
                                               int64_t row0, int64_t m, bool gz_bf16) {
  CheckAffine(gamma, beta);
  Check(y.dim() == 3 && y.is_contiguous() && y.size(2) == gamma.size(0) &&
            y.scalar_type() == (gz_bf16 ? at::kBFloat16 : at::kFloat), "y must be contiguous [B, L, o] in the GEMM dtype");
  Check(gout.dim() == 3 && gout.is_contiguous() && gout.size(0) == y.size(0) && gout.size(2) == y.size(2) &&
            row0 >= 0 && row0 < gout.size(1) && m >= 1, "gout shape mismatch");
  const auto gz_type = gz_bf16 ? at::kBFloat16 : at::kFloat;
  const bool gb = IsBf16(gout, "gout: float or bfloat16");
  if (gb && gz_bf16) return Backward<uint16_t, uint16_t>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
  if (gb) return Backward<uint16_t, float>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
  if (gz_bf16) return Backward<float, uint16_t>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
  return Backward<float, float>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
}

// wt: the first conv's weight as [k, o] (contiguous over channels).
std::vector<at::Tensor> first_bn_relu_forward(const at::Tensor& x, const at::Tensor& wt, int64_t s, int64_t p, int64_t L,
                                              const at::Tensor& gamma, const at::Tensor& beta, double eps,
                                              at::Tensor out, int64_t row0) {
  CheckAffine(gamma, beta);
  const FirstConvRows src = FirstSource(x, wt, s, p, L);
  Check(out.dim() == 3 && out.is_contiguous() && out.size(0) == x.size(0) && out.size(2) == src.o &&
            src.o == gamma.size(0) && row0 >= 0 && row0 < out.size(1), "shape mismatch");
  if (IsBf16(out, "out: float or bfloat16")) return ForwardFirst<uint16_t>(src, x.size(0), gamma, beta, eps, out, row0);
  return ForwardFirst<float>(src, x.size(0), gamma, beta, eps, out, row0);
}

std::vector<at::Tensor> first_bn_relu_backward(const at::Tensor& x, const at::Tensor& wt, int64_t s, int64_t p,
                                               const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd,
                                               const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& gout,
                                               int64_t row0) {
  CheckAffine(gamma, beta);
  Check(y.dim() == 3 && y.is_contiguous() && y.size(0) == x.size(0) && y.scalar_type() == gout.scalar_type(),
        "y must be contiguous [B, L, o] in the dtype of gout");
  const FirstConvRows conv = FirstSource(x, wt, s, p, y.size(1));
  Check(gout.dim() == 3 && gout.is_contiguous() && gout.size(0) == x.size(0) && gout.size(2) == conv.o &&
            y.size(2) == conv.o && conv.o == gamma.size(0) && row0 >= 0 && row0 < gout.size(1), "gout shape mismatch");
  if (IsBf16(gout, "gout: float or bfloat16")) return BackwardFirst<uint16_t>(conv, y, mean, rstd, gamma, beta, gout, row0);
  return BackwardFirst<float>(conv, y, mean, rstd, gamma, beta, gout, row0);
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("forward", &chunk_bn_relu_forward, "chunk sum + BatchNorm (batch statistics) + ReLU, forward");
  mod.def("backward", &chunk_bn_relu_backward, "gradient of forward, scattered to the chunk products");
  mod.def("first_forward", &first_bn_relu_forward, "first conv (1 input channel) + BatchNorm + ReLU, forward");
  mod.def("first_backward", &first_bn_relu_backward, "gradient of first_forward: conv weight, gamma, beta");
  mod.def("pool_forward", &pool_rows_forward, "adaptive max pool over time");
  mod.def("pool_backward", &pool_rows_backward, "gradient of pool_forward (to the first arg-max)");
}
