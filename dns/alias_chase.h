#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dns/answer_table.h"
#include "dns/wire.h"

namespace svcbox::dns {

// An ExternalName's answer made whole: svcbox's CNAME answer with the records for its target
// appended (RFC 1034 §4.3.2).
struct AliasAnswer {
  enum class Outcome {
    kCombined,  // `bytes` holds the whole answer
    kTooLarge,  // it does not fit the client's limit: answer empty with TC so it retries over TCP
    kUnusable,  // a message could not be parsed: the CNAME alone is still a correct answer
  };
  Outcome outcome = Outcome::kUnusable;
  std::vector<uint8_t> bytes;
  // Set by chaseInOwnZones when the chain leaves svcbox's zones: the last target, which only an
  // upstream can resolve (for a client that may recurse).
  std::string outside_target;
};

// Appends the answer records of `target_answer` (an upstream's answer, or svcbox's own for a
// target in its zones) to `alias_answer`. With `carry_negative`, a target that does not exist or
// has no record of the type makes the whole answer say so: its RCODE and its SOA in authority
// (RFC 6604: the RCODE speaks of the last name of the chain).
AliasAnswer combineAliasAnswer(std::span<const uint8_t> alias_answer,
                               std::span<const uint8_t> target_answer, size_t size_limit,
                               bool carry_negative = false);

// True when `target` (presentation form) lies inside one of the table's zones.
bool inOwnZones(const AnswerTable& table, std::string_view target);

// Writes what the client gets for `answer` to `out`: the whole answer; an empty one with TC when
// it is too large (for the client, or for `out`); the CNAME alone (`alias_answer`) when the
// target's answer was unusable. Returns the length.
size_t writeAliasAnswer(const AliasAnswer& answer, const Query& query,
                        std::span<const uint8_t> alias_answer, bool recursion_available,
                        std::span<uint8_t> out);

// Follows an ExternalName through the table, as an authoritative server follows a CNAME within
// its own data, through at most `kMaxChainLength` ExternalNames. A target outside the zones
// (the first one included) ends the chain there and is named in `outside_target`: only an
// upstream can answer for it. `alias_answer` is the CNAME answer respond() gave `query`.
constexpr size_t kMaxChainLength = 8;
AliasAnswer chaseInOwnZones(const AnswerTable& table, const Query& query,
                            std::span<const uint8_t> alias_answer, std::string_view target,
                            size_t size_limit);

}  // namespace svcbox::dns
