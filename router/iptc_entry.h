#pragma once

#include <cstdint>
#include <vector>

#include "router/ruleset.h"

// A Rule as the kernel's x_tables wants it: struct ipt_entry, then each match, then the target,
// each padded to XT_ALIGN. Jumps carry the chain's name; libiptc resolves it on append.
namespace svcbox::router {

std::vector<uint8_t> encodeEntry(const Rule& rule);

}  // namespace svcbox::router
