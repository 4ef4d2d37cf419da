#include "app/file_limit.h"

#include <sys/resource.h>

#include <algorithm>

namespace svcbox::app {

size_t raiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(limit.rlim_cur);
}

std::string fitConnectionCaps(size_t limit, const std::vector<ConnectionCap>& caps) {
  size_t wanted = 0;
  for (const auto& cap : caps) wanted += *cap.value;
  size_t available = limit > kReservedDescriptors ? limit - kReservedDescriptors : 0;
  if (wanted <= available) return "";
  std::string changes;
  for (const auto& cap : caps) {
    size_t before = *cap.value;
    // Each cap keeps its share of what is available; the shares' rounding only lowers them.
    size_t share = static_cast<size_t>(static_cast<long double>(before) * available / wanted);
    *cap.value = std::max<size_t>(1, std::min(before, share));
    changes += (changes.empty() ? "" : ", ") + cap.flag + " " + std::to_string(before) + " -> " +
               std::to_string(*cap.value);
  }
  return "the file descriptor limit (" + std::to_string(limit) +
         ", the hard limit) cannot hold every connection cap plus " +
         std::to_string(kReservedDescriptors) + " for serve itself: lowered " + changes +
         "; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to keep them";
}

}  // namespace svcbox::app
