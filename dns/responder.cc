#include "dns/responder.h"

#include <cstring>

namespace svcbox::dns {
namespace {

// Assembles header, the question as asked, up to two byte ranges of answer sections and OPT.
// Falls back to an empty truncated answer when it would not fit the client's limit.
class Assembler {
 public:
  Assembler(const Query& query, std::span<uint8_t> out, size_t limit)
      : query_(query), out_(out), limit_(limit < out.size() ? limit : out.size()) {}

  size_t write(uint16_t flags, uint8_t rcode, std::span<const uint8_t> first,
               std::span<const uint8_t> second, uint16_t answers, uint16_t authority,
               uint16_t additional, bool* truncated) {
    bool with_opt = query_.has_edns;
    size_t total = kHeaderSize + query_.question.size() + first.size() + second.size() +
                   (with_opt ? kOptRecordSize : 0);
    if (total > limit_) {
      *truncated = true;
      flags |= kFlagTc;
      first = second = {};
      answers = authority = additional = 0;
    }
    uint8_t* p = out_.data();
    writeU16(p, query_.id);
    writeU16(p + 2,
             static_cast<uint16_t>(flags | (query_.flags & (kFlagRd | kFlagCd)) | (rcode & 0x0F)));
    writeU16(p + 4, query_.question.empty() ? 0 : 1);
    writeU16(p + 6, answers);
    writeU16(p + 8, authority);
    writeU16(p + 10, static_cast<uint16_t>(additional + (with_opt ? 1 : 0)));
    size_t length = kHeaderSize;
    for (auto part : {query_.question, first, second}) {
      if (!part.empty()) std::memcpy(p + length, part.data(), part.size());
      length += part.size();
    }
    if (with_opt) length += writeOptRecord(p + length, rcode, query_.dnssec_ok);
    return length;
  }

 private:
  const Query& query_;
  std::span<uint8_t> out_;
  size_t limit_;
};

uint16_t baseFlags(bool authoritative, bool recursion_available) {
  return static_cast<uint16_t>(kFlagQr | (authoritative ? kFlagAa : 0) |
                               (recursion_available ? kFlagRa : 0));
}

}  // namespace

size_t writeError(const Query& query, uint8_t rcode, bool recursion_available,
                  std::span<uint8_t> out) {
  bool truncated = false;
  return Assembler(query, out, out.size())
      .write(baseFlags(false, recursion_available), rcode, {}, {}, 0, 0, 0, &truncated);
}

size_t writeTruncated(const Query& query, bool authoritative, bool recursion_available,
                      std::span<uint8_t> out) {
  bool truncated = false;
  return Assembler(query, out, out.size())
      .write(static_cast<uint16_t>(baseFlags(authoritative, recursion_available) | kFlagTc),
             kNoError, {}, {}, 0, 0, 0, &truncated);
}

Response respond(const Query& query, const AnswerTable& table, const ClientContext& client,
                 std::span<uint8_t> out) {
  Response response;
  switch (query.status) {
    case QueryStatus::kDrop:
      return response;
    case QueryStatus::kFormErr:
    case QueryStatus::kNotImp: {
      // The body was not understood: answer with the header alone.
      Query bare = query;
      bare.question = {};
      bare.has_edns = false;
      response.rcode = query.status == QueryStatus::kFormErr ? kFormErr : kNotImp;
      response.disposition = Disposition::kSend;
      response.length = writeError(bare, response.rcode, client.recursion_allowed, out);
      return response;
    }
    case QueryStatus::kOk:
      break;
  }
  response.disposition = Disposition::kSend;
  auto error = [&](uint8_t rcode) {
    response.rcode = rcode;
    response.length = writeError(query, rcode, client.recursion_allowed, out);
    return response;
  };
  if (query.has_edns && query.edns_version > 0) return error(kBadVers);
  if (query.qclass != kClassIn && query.qclass != kClassAny) return error(kNotImp);
  if (query.qtype == kTypeAxfr || query.qtype == kTypeIxfr) return error(kRefused);

  Assembler assembler(query, out, client.size_limit);
  uint16_t flags = baseFlags(true, client.recursion_allowed);
  auto negative = [&](const AnswerTable::Node& closest, size_t apex_in_query, uint8_t rcode) {
    const auto& zone = table.zone(closest.zone);
    uint8_t pointer[2];
    writeU16(pointer, static_cast<uint16_t>(0xC000 | (kHeaderSize + apex_in_query)));
    response.rcode = rcode;
    response.length = assembler.write(flags, rcode, pointer, zone.soa_without_owner, 0, 1, 0,
                                      &response.truncated);
    return response;
  };

  const AnswerTable::Node* node = table.find(query.lowerName());
  if (node) {
    if (table.isAwaitingRegistry()) return error(kServFail);
    uint16_t type = query.qtype;
    if (node->isAlias()) type = kTypeCname;
    const AnswerTable::Answer* answer = table.answerFor(*node, type);
    if (!answer && query.qtype == kTypeAny && node->answer_count > 0) {
      // RFC 8482: one set is a complete answer to ANY.
      answer = &table.answerAt(node->first_answer);
    }
    if (!answer) return negative(*node, node->apex_offset, kNoError);
    response.length =
        assembler.write(flags, kNoError, table.bytes(*answer), {}, answer->answer_count,
                        answer->authority_count, answer->additional_count, &response.truncated);
    if (node->isAlias() && query.qtype != kTypeCname && !response.truncated) {
      response.disposition = Disposition::kChaseAlias;
      response.alias = node;
    }
    return response;
  }
  // No such name: inside a zone of ours it does not exist; outside, it is someone else's.
  for (size_t label = 1; label < query.label_count; ++label) {
    size_t offset = query.label_offsets[label];
    std::string_view suffix = query.lowerName().substr(offset);
    const AnswerTable::Node* closest = table.find(suffix);
    if (!closest) continue;
    if (table.isAwaitingRegistry()) return error(kServFail);
    size_t apex_in_query = offset + closest->apex_offset;
    return negative(*closest, apex_in_query, kNxDomain);
  }
  if (!client.recursion_allowed) return error(kRefused);
  response.disposition = Disposition::kForward;
  return response;
}

}  // namespace svcbox::dns
