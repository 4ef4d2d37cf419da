#pragma once

#include <string>
#include <vector>

#include "store/snapshot.h"

namespace svcbox::app {

// One line per change a person cares about: Services and Pods added, changed or removed, pods
// becoming ready or not (with the reason), endpoints joining or leaving a Service.
std::vector<std::string> describeChanges(const store::Snapshot* previous,
                                         const store::Snapshot& current);

// Logs what changed (the first snapshot: a summary line), at most 20 lines a snapshot.
void logSnapshotChanges(const store::SnapshotPtr& previous, const store::SnapshotPtr& current);

}  // namespace svcbox::app
