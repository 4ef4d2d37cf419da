#pragma once

#include <string>
#include <vector>

#include "router/desired_state.h"
#include "store/snapshot.h"

namespace svcbox::router {

// Brings the desired state from one snapshot to the next. Snapshots share the entries of
// Services that did not change, so when only the endpoints behind a few Services moved (the
// usual change: a pod added, removed, or turning ready) it rewrites just their chains instead of
// computing every Service again, and says which chains those are. Anything else (a Service added,
// removed or given other ports, a port losing its last endpoint) is computed whole. The result
// is always equal to computeDesiredState(snapshot).
class DesiredStateTracker {
 public:
  explicit DesiredStateTracker(RouterOptions options) : options_(std::move(options)) {}

  struct Change {
    // True when only `nat_chains` differ from the state the previous update returned; filter
    // and mangle are then unchanged too. False: any chain of any table may differ.
    bool incremental = false;
    std::vector<std::string> nat_chains;  // sorted
  };
  const DesiredState& update(const store::SnapshotPtr& snapshot, Change& change);
  const DesiredState& state() const { return state_; }

  // More changed Services than this are computed whole: the walk below costs more than it saves.
  static constexpr size_t kMaxIncrementalServices = 64;

 private:
  // Rewrites the chains of the changed Services in `state_`; false (state_ untouched) when a
  // change reaches beyond them.
  bool patch(const store::Snapshot& previous, const store::Snapshot& current, Change& change);

  RouterOptions options_;
  DesiredState state_;
  store::SnapshotPtr previous_;  // what state_ was computed from
};

}  // namespace svcbox::router
