// Fused epilogue / prologue of one slimmable conv block in the channels-last chunk form
// (train/models/fused.py): the shifted sum of the conv's chunk products, training-mode
// BatchNorm and ReLU in two passes over the activations forward, and their gradient in two
// passes backward, written straight into the buffers the next GEMM reads (padding rows
// zeroed here, so nobody pads, fills or copies again).
//
// Shapes (all contiguous, rows = B * L):
//   z     [B, n, m*o]   conv chunk products (float or bfloat16), n = L + m - 1
//   y     [B, L, o]     conv output = sum_q z[:, l + q, q*o:(q+1)*o], float (saved for backward)
//   out   [B, R, o]     the next block's padded input: rows [row0, row0 + L) = relu(bn(y)),
//                       the other rows zero; rows past R are cropped (the next conv never reads them)
//   gz    [B, n, m*o]   the gradient of z (the next GEMMs' input), zero where no output reads it
// Statistics: per-channel sums in double, per thread then merged (no float cancellation).
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// The per-channel inner loops carry `#pragma GCC ivdep`: their pointers never overlap, and without
// it gcc gives up on vectorizing (too many run-time alias checks).
//
// Element access for float and bfloat16 storage (as uint16_t bits: c10::BFloat16 is a struct
// and its float conversion branches on NaN, both of which stop gcc from vectorizing the loops). Round to nearest even; a NaN
// stays a NaN unless only its low 16 mantissa bits are set (then it becomes infinity).
inline float Load(float v) { return v; }
inline float Load(uint16_t v) {        // bfloat16 bits
  uint32_t bits = static_cast<uint32_t>(v) << 16;
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

// Storage pointer of a float (float) or bfloat16 (uint16_t bits) tensor.
template <typename T>
T* Data(const at::Tensor& t) { return static_cast<T*>(t.data_ptr()); }

// Calls fn(part, r0, r1) for `parts` contiguous ranges of rows [0, rows), one per thread.
int64_t Parts(int64_t rows) { return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows)); }

template <typename F>
void ForRowBlocks(int64_t rows, F&& fn) {
  const int64_t parts = Parts(rows);
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) fn(p, rows * p / parts, rows * (p + 1) / parts);
  });
}

// Per-channel sums of two quantities over many rows: float sums over blocks of kFlushRows rows
// (vectorizable), added to double totals after each block (accurate over ~10^4 rows).
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
    #pragma GCC ivdep
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

// Per-channel BatchNorm constants of one forward pass.
struct Norm {
  at::Tensor mean, rstd;                 // float [o], saved for backward
  std::vector<float> scale, shift;       // gamma * rstd, beta - mean * gamma * rstd
};

// Pass 1 of the forward: fill(r, yr) writes conv output row r (o floats) into y; returns the
// batch statistics (biased variance, as training-mode BatchNorm normalizes).
template <typename FillRow>
Norm ConvStats(int64_t rows, float* yp, const at::Tensor& gamma, const at::Tensor& beta, double eps, FillRow fill) {
  const int64_t o = gamma.size(0), parts = Parts(rows);
  std::vector<double> acc(static_cast<size_t>(parts * 2 * o), 0.0);
  ForRowBlocks(rows, [&](int64_t part, int64_t r0, int64_t r1) {
    ChannelSums sums(o);
    float* __restrict__ s1 = sums.a();
    float* __restrict__ s2 = sums.b();
    for (int64_t r = r0; r < r1; ++r) {
      float* __restrict__ yr = yp + r * o;
      fill(r, yr);
      #pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) {
        s1[c] += yr[c];
        s2[c] += yr[c] * yr[c];
      }
      sums.EndRow();
    }
    sums.Flush();
    std::copy(sums.totals(), sums.totals() + 2 * o, acc.data() + part * 2 * o);
  });
  Norm nm{at::empty({o}, gamma.options()), at::empty({o}, gamma.options()), std::vector<float>(o),
          std::vector<float>(o)};
  float* mp = nm.mean.data_ptr<float>();
  float* rp = nm.rstd.data_ptr<float>();
  const float* gp = gamma.data_ptr<float>();
  const float* bp = beta.data_ptr<float>();
  #pragma GCC ivdep
  for (int64_t c = 0; c < o; ++c) {
    double s1 = 0, s2 = 0;
    for (int64_t p = 0; p < parts; ++p) {
      s1 += acc[p * 2 * o + c];
      s2 += acc[p * 2 * o + o + c];
    }
    const double mu = s1 / rows;
    const double var = std::max(0.0, s2 / rows - mu * mu);
    mp[c] = static_cast<float>(mu);
    rp[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
    nm.scale[c] = gp[c] * rp[c];
    nm.shift[c] = bp[c] - mp[c] * nm.scale[c];
  }
  return nm;
}

// Pass 2 of the forward: out rows [row0, row0 + L) = relu(scale * y + shift), other rows zero.
template <typename TO>
void WriteActivations(const float* yp, int64_t B, int64_t L, const Norm& nm, at::Tensor& out, int64_t row0) {
  const int64_t R = out.size(1), o = out.size(2);
  const int64_t Lw = std::min(L, R - row0);     // output rows the next conv reads
  TO* op = Data<TO>(out);
  const float* __restrict__ sc = nm.scale.data();
  const float* __restrict__ sh = nm.shift.data();
  at::parallel_for(0, B * R, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / R, j = i % R - row0;
      TO* __restrict__ orow = op + i * o;
      if (j < 0 || j >= Lw) {
        #pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) Store(orow + c, 0.0f);
        continue;
      }
      const float* __restrict__ yr = yp + (b * L + j) * o;
      #pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) Store(orow + c, std::max(0.0f, yr[c] * sc[c] + sh[c]));
    }
  });
}

template <typename TZ, typename TO>
std::vector<at::Tensor> Forward(const at::Tensor& z, int64_t L, int64_t m, const at::Tensor& gamma,
                                const at::Tensor& beta, double eps, at::Tensor& out, int64_t row0) {
  const int64_t B = z.size(0), n = z.size(1), o = gamma.size(0);
  auto y = at::empty({B, L, o}, gamma.options());
  const TZ* zp = Data<TZ>(z);
  float* yp = y.data_ptr<float>();
  Norm nm = ConvStats(B * L, yp, gamma, beta, eps, [&](int64_t r, float* __restrict__ yr) {
    const int64_t b = r / L, l = r % L;
    const TZ* __restrict__ z0 = zp + (b * n + l) * m * o;
    #pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) yr[c] = Load(z0[c]);
    for (int64_t q = 1; q < m; ++q) {
      const TZ* __restrict__ zq = zp + (b * n + l + q) * m * o + q * o;
      #pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) yr[c] += Load(zq[c]);
    }
  });
  WriteActivations<TO>(yp, B, L, nm, out, row0);
  return {y, nm.mean, nm.rstd};
}

// The first conv (one input channel) computed directly: y[b, l, c] = sum_j x[b, s*l + j - p] * w[c, j].
template <typename TO>
std::vector<at::Tensor> ForwardFirst(const at::Tensor& x, const at::Tensor& w, int64_t s, int64_t p, int64_t L,
                                     const at::Tensor& gamma, const at::Tensor& beta, double eps, at::Tensor& out,
                                     int64_t row0) {
  const int64_t B = x.size(0), T = x.size(1), o = w.size(0), k = w.size(1);
  auto y = at::empty({B, L, o}, gamma.options());
  const auto wt = w.t().contiguous();                  // [k, o]: contiguous over channels
  const float* xp = x.data_ptr<float>();
  const float* wp = wt.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  Norm nm = ConvStats(B * L, yp, gamma, beta, eps, [&](int64_t r, float* __restrict__ yr) {
    const int64_t b = r / L, l = r % L;
    #pragma GCC ivdep
    for (int64_t c = 0; c < o; ++c) yr[c] = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t t = s * l + j - p;
      if (t < 0 || t >= T) continue;
      const float xv = xp[b * T + t];
      const float* __restrict__ wj = wp + j * o;
      #pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) yr[c] += xv * wj[c];
    }
  });
  WriteActivations<TO>(yp, B, L, nm, out, row0);
  return {y, nm.mean, nm.rstd};
}

// Pass 1 of the backward: g = dL/d(pre-ReLU) (zero for rows the next conv never read); per
// channel sum(g) (= dbeta) and sum(g * xhat) (= dgamma). Returns k1 = mean(g), k2 = mean(g*xhat).
struct GradNorm {
  at::Tensor dgamma, dbeta;
  std::vector<float> scale, shift, k1, k2;
  const float* mean;
  const float* rstd;
};

template <typename TG>
GradNorm GradStats(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd, const at::Tensor& gamma,
                   const at::Tensor& beta, const TG* gp, int64_t R, int64_t row0) {
  const int64_t B = y.size(0), L = y.size(1), o = y.size(2);
  const int64_t rows = B * L, parts = Parts(rows);
  const int64_t Lw = std::min(L, R - row0);
  GradNorm gn{at::empty({o}, gamma.options()), at::empty({o}, gamma.options()), std::vector<float>(o),
              std::vector<float>(o), std::vector<float>(o), std::vector<float>(o), mean.data_ptr<float>(),
              rstd.data_ptr<float>()};
  const float* gam = gamma.data_ptr<float>();
  const float* bet = beta.data_ptr<float>();
  #pragma GCC ivdep
  for (int64_t c = 0; c < o; ++c) {
    gn.scale[c] = gam[c] * gn.rstd[c];
    gn.shift[c] = bet[c] - gn.mean[c] * gn.scale[c];
  }
  const float* yp = y.data_ptr<float>();
  const float* __restrict__ sc = gn.scale.data();
  const float* __restrict__ sh = gn.shift.data();
  const float* __restrict__ mp = gn.mean;
  const float* __restrict__ rp = gn.rstd;
  std::vector<double> acc(static_cast<size_t>(parts * 2 * o), 0.0);
  ForRowBlocks(rows, [&](int64_t part, int64_t r0, int64_t r1) {
    ChannelSums sums(o);
    float* __restrict__ sg = sums.a();
    float* __restrict__ sgx = sums.b();
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / L, l = r % L;
      if (l >= Lw) continue;
      const float* __restrict__ yr = yp + r * o;
      const TG* __restrict__ gr = gp + (b * R + row0 + l) * o;
      #pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) {
        const float pre = yr[c] * sc[c] + sh[c];
        const float gv = Load(gr[c]);          // unconditional load: lets the loop vectorize
        const float g = pre > 0.0f ? gv : 0.0f;
        sg[c] += g;
        sgx[c] += g * ((yr[c] - mp[c]) * rp[c]);
      }
      sums.EndRow();
    }
    sums.Flush();
    std::copy(sums.totals(), sums.totals() + 2 * o, acc.data() + part * 2 * o);
  });
  float* dgp = gn.dgamma.data_ptr<float>();
  float* dbp = gn.dbeta.data_ptr<float>();
  #pragma GCC ivdep
  for (int64_t c = 0; c < o; ++c) {
    double sg = 0, sgx = 0;
    for (int64_t p = 0; p < parts; ++p) {
      sg += acc[p * 2 * o + c];
      sgx += acc[p * 2 * o + o + c];
    }
    dbp[c] = static_cast<float>(sg);
    dgp[c] = static_cast<float>(sgx);
    gn.k1[c] = static_cast<float>(sg / rows);
    gn.k2[c] = static_cast<float>(sgx / rows);
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

template <typename TG, typename TZ>
std::vector<at::Tensor> Backward(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd,
                                 const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& gout,
                                 int64_t row0, int64_t m, at::ScalarType gz_type) {
  const int64_t B = y.size(0), L = y.size(1), o = y.size(2), R = gout.size(1), n = L + m - 1;
  const int64_t Lw = std::min(L, R - row0);     // rows past Lw were never read: zero gradient
  const TG* gp = Data<TG>(gout);
  const GradNorm gn = GradStats(y, mean, rstd, gamma, beta, gp, R, row0);
  // pass 2: dy scattered to the m column blocks of gz (row l + q, block q); entries no output
  // reads are zero
  const float* yp = y.data_ptr<float>();
  auto gz = at::empty({B, n, m * o}, gamma.options().dtype(gz_type));
  TZ* zp = Data<TZ>(gz);
  at::parallel_for(0, B * n, 32, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / n, j = i % n;
      for (int64_t q = 0; q < m; ++q) {
        TZ* __restrict__ dst = zp + i * m * o + q * o;
        const int64_t l = j - q;
        if (l < 0 || l >= L) {
          #pragma GCC ivdep
          for (int64_t c = 0; c < o; ++c) Store(dst + c, 0.0f);
          continue;
        }
        RowGrad(gn, o, yp + (b * L + l) * o, l < Lw ? gp + (b * R + row0 + l) * o : nullptr, dst);
      }
    }
  });
  return {gz, gn.dgamma, gn.dbeta};
}

// Backward of the first conv: the weight gradient gw[c, j] = sum_{b,l} dy[b,l,c] x[b, s*l+j-p]
// accumulated directly (no gradient tensor of the conv output is ever written).
template <typename TG>
std::vector<at::Tensor> BackwardFirst(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd,
                                      const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& gout,
                                      int64_t row0, const at::Tensor& x, int64_t s, int64_t p, int64_t k) {
  const int64_t B = y.size(0), L = y.size(1), o = y.size(2), R = gout.size(1), T = x.size(1);
  const int64_t rows = B * L, parts = Parts(rows), Lw = std::min(L, R - row0);
  const TG* gp = Data<TG>(gout);
  const GradNorm gn = GradStats(y, mean, rstd, gamma, beta, gp, R, row0);
  const float* yp = y.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  std::vector<double> acc(static_cast<size_t>(parts * k * o), 0.0);
  ForRowBlocks(rows, [&](int64_t part, int64_t r0, int64_t r1) {
    std::vector<float> dy(o), f(k * o, 0.0f);
    std::vector<double> d(k * o, 0.0);
    int flush = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / L, l = r % L;
      RowGrad(gn, o, yp + r * o, l < Lw ? gp + (b * R + row0 + l) * o : nullptr, dy.data());
      for (int64_t j = 0; j < k; ++j) {
        const int64_t t = s * l + j - p;
        if (t < 0 || t >= T) continue;
        const float xv = xp[b * T + t];
        float* __restrict__ fj = f.data() + j * o;
        const float* __restrict__ dv = dy.data();
        #pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) fj[c] += xv * dv[c];
      }
      if (++flush == ChannelSums::kFlushRows || r + 1 == r1) {
        #pragma GCC ivdep
        for (int64_t i = 0; i < k * o; ++i) {
          d[i] += f[i];
          f[i] = 0.0f;
        }
        flush = 0;
      }
    }
    std::copy(d.begin(), d.end(), acc.data() + part * k * o);
  });
  auto gw = at::empty({o, k}, gamma.options());
  float* gwp = gw.data_ptr<float>();
  for (int64_t j = 0; j < k; ++j)
    #pragma GCC ivdep
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

void Check(bool ok, const char* what) { TORCH_CHECK(ok, "chunk_bn_relu: ", what); }

}  // namespace

std::vector<at::Tensor> chunk_bn_relu_forward(const at::Tensor& z, int64_t L, int64_t m, const at::Tensor& gamma,
                                              const at::Tensor& beta, double eps, at::Tensor out, int64_t row0) {
  Check(z.dim() == 3 && z.is_contiguous() && out.dim() == 3 && out.is_contiguous(), "z / out must be contiguous 3-D");
  const int64_t o = gamma.size(0);
  Check(gamma.scalar_type() == at::kFloat && beta.scalar_type() == at::kFloat && gamma.is_contiguous() &&
            beta.is_contiguous() && beta.size(0) == o, "gamma / beta must be contiguous float [o]");
  Check(z.size(2) == m * o && z.size(1) == L + m - 1 && out.size(0) == z.size(0) && out.size(2) == o &&
            row0 >= 0 && row0 < out.size(1), "shape mismatch");
  const bool zb = z.scalar_type() == at::kBFloat16, ob = out.scalar_type() == at::kBFloat16;
  Check((zb || z.scalar_type() == at::kFloat) && (ob || out.scalar_type() == at::kFloat), "float or bfloat16 only");
  if (zb && ob) return Forward<uint16_t, uint16_t>(z, L, m, gamma, beta, eps, out, row0);
  if (zb) return Forward<uint16_t, float>(z, L, m, gamma, beta, eps, out, row0);
  if (ob) return Forward<float, uint16_t>(z, L, m, gamma, beta, eps, out, row0);
  return Forward<float, float>(z, L, m, gamma, beta, eps, out, row0);
}

std::vector<at::Tensor> chunk_bn_relu_backward(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd,
                                               const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& gout,
                                               int64_t row0, int64_t m, bool gz_bf16) {
  Check(y.dim() == 3 && y.is_contiguous() && y.scalar_type() == at::kFloat, "y must be contiguous float [B, L, o]");
  Check(gout.dim() == 3 && gout.is_contiguous() && gout.size(0) == y.size(0) && gout.size(2) == y.size(2) &&
            row0 >= 0 && row0 < gout.size(1), "gout shape mismatch");
  const auto gz_type = gz_bf16 ? at::kBFloat16 : at::kFloat;
  const bool gb = gout.scalar_type() == at::kBFloat16;
  Check(gb || gout.scalar_type() == at::kFloat, "float or bfloat16 only");
  if (gb && gz_bf16) return Backward<uint16_t, uint16_t>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
  if (gb) return Backward<uint16_t, float>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
  if (gz_bf16) return Backward<float, uint16_t>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
  return Backward<float, float>(y, mean, rstd, gamma, beta, gout, row0, m, gz_type);
}

std::vector<at::Tensor> first_bn_relu_forward(const at::Tensor& x, const at::Tensor& w, int64_t s, int64_t p, int64_t L,
                                              const at::Tensor& gamma, const at::Tensor& beta, double eps,
                                              at::Tensor out, int64_t row0) {
  Check(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == at::kFloat, "x must be contiguous float [B, T]");
  Check(w.dim() == 2 && w.scalar_type() == at::kFloat && w.size(0) == gamma.size(0), "w must be float [o, k]");
  Check(gamma.scalar_type() == at::kFloat && beta.scalar_type() == at::kFloat && gamma.is_contiguous() &&
            beta.is_contiguous() && beta.size(0) == gamma.size(0), "gamma / beta must be contiguous float [o]");
  Check(out.dim() == 3 && out.is_contiguous() && out.size(0) == x.size(0) && out.size(2) == w.size(0) && row0 >= 0 &&
            row0 < out.size(1) && L >= 1 && s >= 1, "shape mismatch");
  if (out.scalar_type() == at::kBFloat16) return ForwardFirst<uint16_t>(x, w, s, p, L, gamma, beta, eps, out, row0);
  Check(out.scalar_type() == at::kFloat, "float or bfloat16 only");
  return ForwardFirst<float>(x, w, s, p, L, gamma, beta, eps, out, row0);
}

std::vector<at::Tensor> first_bn_relu_backward(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd,
                                               const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& gout,
                                               int64_t row0, const at::Tensor& x, int64_t s, int64_t p, int64_t k) {
  Check(y.dim() == 3 && y.is_contiguous() && y.scalar_type() == at::kFloat, "y must be contiguous float [B, L, o]");
  Check(gout.dim() == 3 && gout.is_contiguous() && gout.size(0) == y.size(0) && gout.size(2) == y.size(2) &&
            row0 >= 0 && row0 < gout.size(1), "gout shape mismatch");
  Check(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == at::kFloat && x.size(0) == y.size(0), "x mismatch");
  if (gout.scalar_type() == at::kBFloat16) return BackwardFirst<uint16_t>(y, mean, rstd, gamma, beta, gout, row0, x, s, p, k);
  Check(gout.scalar_type() == at::kFloat, "float or bfloat16 only");
  return BackwardFirst<float>(y, mean, rstd, gamma, beta, gout, row0, x, s, p, k);
}

// Adaptive max pool over time: h [B, L, o] -> pooled [B, rows, o], pooled[b, i, c] = max of
// h[b, t, c] over row i's window; arg [B, rows, o] (uint8) = the arg-max offset in the window
// (the first maximum, as torch's adaptive_max_pool).
std::vector<at::Tensor> pool_rows_forward(const at::Tensor& h, int64_t rows) {
  Check(h.dim() == 3 && h.is_contiguous() && h.scalar_type() == at::kFloat, "h must be contiguous float [B, L, o]");
  const int64_t B = h.size(0), L = h.size(1), o = h.size(2);
  Check(rows >= 1 && L >= 1 && (L + rows - 1) / rows < 256, "pool shape mismatch");
  auto pooled = at::empty({B, rows, o}, h.options());
  auto arg = at::empty({B, rows, o}, h.options().dtype(at::kByte));
  const float* hp = Data<float>(h);
  float* pp = Data<float>(pooled);
  uint8_t* ap = Data<uint8_t>(arg);
  at::parallel_for(0, B * rows, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t bi = i0; bi < i1; ++bi) {
      const int64_t b = bi / rows, i = bi % rows;
      const int64_t s = WinStart(i, L, rows), e = WinEnd(i, L, rows);
      float* __restrict__ bv = pp + bi * o;
      uint8_t* __restrict__ ar = ap + bi * o;
      const float* __restrict__ h0 = hp + (b * L + s) * o;
#pragma GCC ivdep
      for (int64_t c = 0; c < o; ++c) {
        bv[c] = h0[c];
        ar[c] = 0;
      }
      for (int64_t t = s + 1; t < e; ++t) {
        const float* __restrict__ ht = hp + (b * L + t) * o;
        const uint8_t off = static_cast<uint8_t>(t - s);
#pragma GCC ivdep
        for (int64_t c = 0; c < o; ++c) {
          const bool gt = ht[c] > bv[c];      // strict: ties keep the first row
          bv[c] = gt ? ht[c] : bv[c];
          ar[c] = gt ? off : ar[c];
        }
      }
    }
  });
  return {pooled, arg};
}

at::Tensor pool_rows_backward(const at::Tensor& gpooled, const at::Tensor& arg, int64_t L) {
  Check(gpooled.dim() == 3 && gpooled.scalar_type() == at::kFloat && arg.dim() == 3 && arg.is_contiguous() &&
            gpooled.sizes() == arg.sizes(), "pool backward shape mismatch");
  const auto g = gpooled.contiguous();
  const int64_t B = arg.size(0), rows = arg.size(1), o = arg.size(2);
  auto gh = at::zeros({B, L, o}, g.options());
  const float* gp = Data<float>(g);
  const uint8_t* ap = Data<uint8_t>(arg);
  float* hp = Data<float>(gh);
  at::parallel_for(0, B, 16, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t s = WinStart(i, L, rows);
        const uint8_t* ar = ap + (b * rows + i) * o;
        const float* gr = gp + (b * rows + i) * o;
        for (int64_t c = 0; c < o; ++c) hp[(b * L + s + ar[c]) * o + c] += gr[c];
      }
  });
  return gh;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("forward", &chunk_bn_relu_forward, "chunk sum + BatchNorm (batch statistics) + ReLU, forward");
  mod.def("backward", &chunk_bn_relu_backward, "gradient of chunk_bn_relu forward, scattered to the chunk products");
  mod.def("pool_forward", &pool_rows_forward, "adaptive max pool over time (arg-max kept for backward)");
  mod.def("pool_backward", &pool_rows_backward, "gradient of pool_forward");
  mod.def("first_forward", &first_bn_relu_forward, "first conv (1 input channel) + BatchNorm + ReLU, forward");
  mod.def("first_backward", &first_bn_relu_backward, "gradient of first_forward: conv weight, gamma, beta");
}
