#include "dns/record_writer.h"

#include "dns/wire.h"

namespace svcbox::dns {
namespace {
constexpr size_t kMaxPointerOffset = 0x3FFF;
}

void RecordWriter::reset(std::string_view question_name) {
  base_ = kHeaderSize + question_name.size() + 4;
  tail_.clear();
  known_.clear();
  for (size_t offset = 0; offset < question_name.size() && question_name[offset] != 0;
       offset += 1 + static_cast<uint8_t>(question_name[offset])) {
    remember(question_name.substr(offset), kHeaderSize + offset);
  }
}

void RecordWriter::remember(std::string_view suffix, size_t offset) {
  if (offset > kMaxPointerOffset) return;
  for (const auto& [known, at] : known_) {
    if (known == suffix) return;
  }
  known_.emplace_back(suffix, static_cast<uint16_t>(offset));
}

void RecordWriter::name(std::string_view wire, bool compress) {
  size_t offset = 0;
  while (offset < wire.size() && wire[offset] != 0) {
    std::string_view suffix = wire.substr(offset);
    if (compress) {
      for (const auto& [known, at] : known_) {
        if (known == suffix) {
          u16(static_cast<uint16_t>(0xC000 | at));
          return;
        }
      }
    }
    remember(suffix, absolute());
    size_t label = 1 + static_cast<uint8_t>(wire[offset]);
    tail_.insert(tail_.end(), wire.begin() + static_cast<ptrdiff_t>(offset),
                 wire.begin() + static_cast<ptrdiff_t>(offset + label));
    offset += label;
  }
  tail_.push_back(0);
}

void RecordWriter::begin(std::string_view owner_wire, uint16_t type, uint32_t ttl) {
  name(owner_wire);
  u16(type);
  u16(kClassIn);
  u32(ttl);
  rdlength_at_ = tail_.size();
  u16(0);
}

void RecordWriter::end() {
  writeU16(tail_.data() + rdlength_at_, static_cast<uint16_t>(tail_.size() - rdlength_at_ - 2));
}

void RecordWriter::u16(uint16_t value) {
  tail_.push_back(static_cast<uint8_t>(value >> 8));
  tail_.push_back(static_cast<uint8_t>(value));
}

void RecordWriter::u32(uint32_t value) {
  u16(static_cast<uint16_t>(value >> 16));
  u16(static_cast<uint16_t>(value));
}

void RecordWriter::bytes(const uint8_t* data, size_t size) {
  tail_.insert(tail_.end(), data, data + size);
}

void RecordWriter::characterString(std::string_view text) {
  tail_.push_back(static_cast<uint8_t>(text.size()));
  bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

}  // namespace svcbox::dns
