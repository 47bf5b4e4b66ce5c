// A caching CPU allocator for the fused training layout (train/speed.py installs it).
//
// Why: a training step allocates and frees the same few hundred activation, chunk-product and
// gradient buffers (0.1-40 MB each) nine passes over, with sizes that change with every drawn
// width. glibc serves them from its heap with a best-fit search over bins fragmented by all
// those sizes (posix_memalign -> _int_malloc: ~3 % of a ResNet step's samples) and hands back
// whatever block fits, often one not touched for a while. Here a freed block goes on a LIFO
// list of its size class and the next request of that class gets it back: no search, no page
// faults, and the block is the most recently used one.
//
// Requests under kMinCached bytes go to the allocator that was installed before (glibc keeps
// those fast); raw_deallocate of such a block reaches Delete and goes back to it. Sizes are rounded up to 8 classes per power of two (at most 12.5 % more). At
// most `cap` bytes are kept cached; a block freed beyond that goes back to the system.
// Blocks are 64-byte aligned, as c10 requires. Thread-safe (one mutex; the allocations come
// almost all from the thread that runs the step).
#include <torch/extension.h>

#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMinCached = size_t{1} << 16;

size_t SizeClass(size_t n) {
  const size_t top = size_t{1} << (63 - __builtin_clzll(n));
  const size_t step = std::max(top / 8, kAlignment);
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator(c10::Allocator* fallback, size_t cap)
      : fallback_(fallback), fallback_free_(fallback->raw_deleter()), cap_(cap) {
    TORCH_CHECK(fallback_free_ != nullptr, "slimhar CPU cache: the current CPU allocator has no raw deleter");
  }

  c10::DataPtr allocate(size_t n) override {
    if (n < kMinCached) return fallback_->allocate(n);
    const size_t c = SizeClass(n);
    void* p = Take(c);
    if (p == nullptr) {
      p = NewBlock(c);
      if (p == nullptr) {          // out of memory: give the cache back to the system, retry once
        Trim();
        p = NewBlock(c);
      }
      TORCH_CHECK(p != nullptr, "slimhar CPU cache: out of memory allocating ", c, " bytes");
    }
    return {p, p, &Delete, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  void set_cap(size_t cap) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cap_ = cap;
    }
    if (cached_bytes() > cap) Trim();
  }

  // Frees every cached block.
  void Trim() {
    std::unordered_map<size_t, std::vector<void*>> blocks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocks.swap(free_);
      cached_ = 0;
    }
    for (auto& kv : blocks)
      for (void* p : kv.second) std::free(p);
  }

  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

  std::vector<int64_t> Stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {static_cast<int64_t>(cached_), static_cast<int64_t>(cap_), hits_, misses_,
            static_cast<int64_t>(live_.size())};
  }

  static CachingCpuAllocator* instance;

 private:
  static void Delete(void* p) { instance->Release(p); }

  void* Take(size_t c) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(c);
    if (it == free_.end() || it->second.empty()) {
      ++misses_;
      return nullptr;
    }
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= c;
    live_.emplace(p, c);
    ++hits_;
    return p;
  }

  void* NewBlock(size_t c) {
    void* p = nullptr;
    if (posix_memalign(&p, kAlignment, c) != 0) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    live_.emplace(p, c);
    return p;
  }

  void Release(void* p) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(p);
      if (it == live_.end()) {      // a small block of the fallback's, freed through raw_deleter()
        fallback_free_(p);
        return;
      }
      const size_t c = it->second;
      live_.erase(it);
      if (cached_ + c <= cap_) {
        free_[c].push_back(p);
        cached_ += c;
        return;
      }
    }
    std::free(p);
  }

  c10::Allocator* fallback_;
  c10::DeleterFnPtr fallback_free_;    // raw_deleter() is ours, so raw_deallocate of a small block comes here
  size_t cap_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;   // size class -> freed blocks (LIFO)
  std::unordered_map<void*, size_t> live_;                // block -> its size class
  size_t cached_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

}  // namespace

// Installs the cache as torch's CPU allocator (once per process; later calls set the cap).
// Never uninstalled: tensors it allocated free through it whenever they die.
bool install_cpu_cache(int64_t cap_bytes) {
  TORCH_CHECK(cap_bytes >= 0, "slimhar CPU cache: cap must be >= 0");
  if (CachingCpuAllocator::instance == nullptr) {
    CachingCpuAllocator::instance = new CachingCpuAllocator(c10::GetCPUAllocator(), static_cast<size_t>(cap_bytes));
    c10::SetCPUAllocator(CachingCpuAllocator::instance, /*priority=*/100);
    return true;
  }
  CachingCpuAllocator::instance->set_cap(static_cast<size_t>(cap_bytes));
  return false;
}

// (cached bytes, cap, hits, misses, live blocks); all zero when not installed.
std::vector<int64_t> cpu_cache_stats() {
  if (CachingCpuAllocator::instance == nullptr) return {0, 0, 0, 0, 0};
  return CachingCpuAllocator::instance->Stats();
}

// Frees every cached block (e.g. before a long evaluation run that needs the memory).
void cpu_cache_trim() {
  if (CachingCpuAllocator::instance != nullptr) CachingCpuAllocator::instance->Trim();
}
