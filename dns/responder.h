#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/answer_table.h"
#include "dns/wire.h"

// Turns one parsed query into an answer from the table: the whole authoritative path, with no
// allocation and no I/O. What needs the network (forwarding) is handed back to the caller.
namespace svcbox::dns {

enum class Disposition : uint8_t {
  kSend,        // `out` holds the response
  kDrop,        // say nothing (a response packet, or too short to have an ID)
  kForward,     // outside svcbox's zones and the client may recurse
  kChaseAlias,  // an ExternalName: `out` holds the CNAME answer; its target may be followed in
                // svcbox's own zones or, for a client that may recurse, resolved upstream
};

struct Response {
  Disposition disposition = Disposition::kDrop;
  size_t length = 0;
  uint8_t rcode = kNoError;
  bool truncated = false;
  const AnswerTable::Node* alias = nullptr;  // for kChaseAlias
};

struct ClientContext {
  bool recursion_allowed = false;
  size_t size_limit = kPlainUdpSize;  // the query's UDP limit, or 65535 over TCP
};

// The answer goes to `out`; whatever does not fit `out` or the client's limit is truncated (TC).
constexpr size_t kMaxResponse = 65535;
Response respond(const Query& query, const AnswerTable& table, const ClientContext& client,
                 std::span<uint8_t> out);

// An empty answer with TC set (and AA when `authoritative`), for an answer that does not fit the
// client's UDP size: the client asks again over TCP.
size_t writeTruncated(const Query& query, bool authoritative, bool recursion_available,
                      std::span<uint8_t> out);

// A bare error answer (FORMERR, SERVFAIL, REFUSED...) for a parsed query, with OPT when the
// query had one.
size_t writeError(const Query& query, uint8_t rcode, bool recursion_available,
                  std::span<uint8_t> out);

}  // namespace svcbox::dns
