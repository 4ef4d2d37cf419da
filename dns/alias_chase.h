#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace svcbox::dns {

// An ExternalName's answer made whole: svcbox's CNAME answer with the upstream's records for the
// target appended to the answer section. Empty when either message cannot be parsed or the result
// exceeds `size_limit` (the caller then sends the CNAME alone, which is still a correct answer).
std::vector<uint8_t> combineAliasAnswer(std::span<const uint8_t> alias_answer,
                                        std::span<const uint8_t> upstream_answer,
                                        size_t size_limit);

}  // namespace svcbox::dns
