#pragma once

#include <malloc.h>

#include <atomic>
#include <chrono>

namespace svcbox::app {

// Buffers of 1 MiB and more get mappings of their own, returned to the kernel when freed. glibc
// otherwise raises its mmap threshold to the size of each large block freed (up to 32 MiB), and
// libiptc's table blobs (about 20 MB at 10,000 Services, several per sync) then come from the
// threads' arenas, where what surrounds them pins the pages: bench/hostile/soak measured RSS
// creeping 0.4 MiB a minute, from a floor near 190 MiB; with this, a floor near 145 MiB and no
// creep (bench/hostile/results). Call before any thread starts.
inline void keepLargeBuffersOutOfArenas() { mallopt(M_MMAP_THRESHOLD, 1 << 20); }

// Gives freed memory back to the kernel at most once per period. A snapshot's compile and rule
// sync free most of what they allocate, scattered over the threads' malloc arenas, and glibc
// keeps those pages until asked: bench/hostile/soak (10,000 Services, 5 API writes a second) grew
// serve's RSS by 7 MiB in 8 minutes without this.
class MemoryTrim {
 public:
  explicit MemoryTrim(std::chrono::seconds period) : period_(period) {}
  void afterSnapshot() {
    auto now = Clock::now().time_since_epoch().count();
    auto last = last_.load();
    if (now - last < std::chrono::duration_cast<Clock::duration>(period_).count()) return;
    if (!last_.compare_exchange_strong(last, now)) return;  // another thread trims now
    malloc_trim(0);
  }
  // At once (after start-up, which frees most of what loading the registry allocated).
  void now() {
    last_ = Clock::now().time_since_epoch().count();
    malloc_trim(0);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::chrono::seconds period_;
  // Any thread: serve's main thread trims after start-up, the fan-out's after snapshots.
  std::atomic<Clock::rep> last_{Clock::now().time_since_epoch().count()};
};

}  // namespace svcbox::app
