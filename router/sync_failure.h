#pragma once

#include <string>

namespace svcbox::router {

// Why a backend could not bring the kernel (or its listeners) to what a snapshot implies. The
// router layer's one error convention: a bool result plus this, never an exception.
struct SyncFailure {
  std::string message;
  bool permission_denied = false;  // a capability is missing: retrying will not help
};

}  // namespace svcbox::router
