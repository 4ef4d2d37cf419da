#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Encodes resource records for the answer table, with name compression against the question name
// (always at offset 12) and against names written before. Used when a table is compiled, never
// on the query path.
namespace svcbox::dns {

class RecordWriter {
 public:
  // Starts over for answers to `question_name` (a lower-cased wire name). Every name given to the
  // writer must stay alive until the next reset: the compression dictionary keeps views of them.
  void reset(std::string_view question_name);

  // Starts a record; the owner name is compressed. Finish it with the rdata calls and end().
  void begin(std::string_view owner_wire, uint16_t type, uint32_t ttl);
  void u16(uint16_t value);
  void u32(uint32_t value);
  void bytes(const uint8_t* data, size_t size);
  void name(std::string_view wire, bool compress = true);
  void characterString(std::string_view text);
  void end();

  // Bytes after the question.
  const std::vector<uint8_t>& tail() const { return tail_; }

 private:
  size_t absolute() const { return base_ + tail_.size(); }
  void remember(std::string_view suffix, size_t offset);

  size_t base_ = 0;
  std::vector<uint8_t> tail_;
  size_t rdlength_at_ = 0;
  std::vector<std::pair<std::string_view, uint16_t>> known_;  // suffix -> offset in the message
};

}  // namespace svcbox::dns
