#include "app/json_tree.h"

#include <cstddef>
#include <deque>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace svcbox::app::yaml {
namespace {

using nlohmann::json;

// A byte iterator that records how far nlohmann's lexer has read: SAX events carry no position,
// and this is what lets each node learn where it was written.
class ReadTracker {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  ReadTracker(const char* at, const char** furthest) : at_(at), furthest_(furthest) {}
  reference operator*() const { return *at_; }
  ReadTracker& operator++() {
    *furthest_ = ++at_;
    return *this;
  }
  ReadTracker operator++(int) {
    ReadTracker before = *this;
    ++*this;
    return before;
  }
  bool operator==(const ReadTracker& other) const { return at_ == other.at_; }
  bool operator!=(const ReadTracker& other) const { return at_ != other.at_; }

 private:
  const char* at_;
  const char** furthest_;
};

bool isBetweenTokens(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ':';
}

// nlohmann's message starts with its own "[json.exception.parse_error.101] parse error at line
// L, column C: "; the caller names the position in the form every other parser error uses.
std::string withoutPosition(const std::string& message) {
  auto at = message.find("parse error");
  auto colon = at == std::string::npos ? at : message.find(": ", at);
  return colon == std::string::npos ? message : message.substr(colon + 2);
}

// The SAX handler nlohmann's parser calls (it reads iteratively, so no input can make it recurse
// deeply); it builds the tree with the nodes' positions and stops at the depth limit.
class TreeBuilder {
 public:
  explicit TreeBuilder(std::string_view text) : text_(text), furthest_(text.data()) {}

  const char** furthest() { return &furthest_; }
  const NodeData* root() const { return root_; }
  const std::optional<Error>& error() const { return error_; }

  bool null() { return add(NodeData::Type::kNull, "null", "?"); }
  bool boolean(bool value) { return add(NodeData::Type::kScalar, value ? "true" : "false", "?"); }
  bool number_integer(json::number_integer_t value) {
    return add(NodeData::Type::kScalar, std::to_string(value), "?");
  }
  bool number_unsigned(json::number_unsigned_t value) {
    return add(NodeData::Type::kScalar, std::to_string(value), "?");
  }
  bool number_float(json::number_float_t, const std::string& written) {
    return add(NodeData::Type::kScalar, written, "?");
  }
  bool string(std::string& value) { return add(NodeData::Type::kScalar, std::move(value), "!"); }
  bool key(std::string& value) { return add(NodeData::Type::kScalar, std::move(value), "!"); }
  bool binary(json::binary_t&) { return false; }  // only the binary formats produce these
  bool start_object(std::size_t) { return open(NodeData::Type::kMap); }
  bool start_array(std::size_t) { return open(NodeData::Type::kSequence); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool parse_error(std::size_t position, const std::string&, const json::exception& error) {
    // `position` counts the bytes read, the one the lexer stopped at included.
    error_.emplace(withoutPosition(error.what()), markAt(position > 0 ? position - 1 : 0));
    return false;
  }

 private:
  bool add(NodeData::Type type, std::string scalar, const char* tag) {
    NodeData& node = nodes_.emplace_back();
    node.type = type;
    node.scalar = std::move(scalar);
    node.tag = tag;
    node.mark = tokenMark();
    if (open_.empty()) {
      root_ = &node;
    } else {
      open_.back()->children.push_back(&node);
    }
    return true;
  }

  bool open(NodeData::Type type) {
    if (open_.size() >= kMaxDepth) {
      error_.emplace("nested deeper than " + std::to_string(kMaxDepth) + " levels", tokenMark());
      return false;
    }
    add(type, "", "");
    open_.push_back(&nodes_.back());
    return true;
  }

  bool close() {
    open_.pop_back();
    consumed_ = static_cast<size_t>(furthest_ - text_.data());
    return true;
  }

  // Where the token of the current event starts: the first byte after what the previous event
  // had read that is neither whitespace nor a separator. The lexer reads ahead by one byte only
  // after a number, and that byte can only be whitespace, a separator or a closing bracket,
  // whose own event comes before the next token's.
  Mark tokenMark() {
    size_t start = consumed_;
    while (start < text_.size() && isBetweenTokens(text_[start])) ++start;
    advance(start);
    consumed_ = static_cast<size_t>(furthest_ - text_.data());
    return mark_;
  }

  // Moves mark_ forward to `offset`; columns count characters, as libyaml's do, not bytes.
  void advance(size_t offset) {
    for (; marked_ < offset && marked_ < text_.size(); ++marked_) {
      auto byte = static_cast<unsigned char>(text_[marked_]);
      if (byte == '\n') {
        ++mark_.line;
        mark_.column = 0;
      } else if ((byte & 0xC0) != 0x80) {
        ++mark_.column;
      }
    }
  }

  Mark markAt(size_t offset) {
    if (offset < marked_) {  // only after an error, so starting over costs nothing that matters
      marked_ = 0;
      mark_ = Mark{};
    }
    advance(offset);
    return mark_;
  }

  std::string_view text_;
  const char* furthest_;  // how far the lexer has read, kept by ReadTracker
  size_t consumed_ = 0;   // what the lexer had read at the previous event
  size_t marked_ = 0;     // mark_ is the position of this offset
  Mark mark_;
  std::deque<NodeData> nodes_;  // a deque keeps addresses stable as it grows
  std::vector<NodeData*> open_;
  const NodeData* root_ = nullptr;
  std::optional<Error> error_;
};

}  // namespace

void readJson(std::string_view text, const std::function<void(const Node& root)>& visit) {
  TreeBuilder builder(text);
  ReadTracker begin(text.data(), builder.furthest());
  ReadTracker end(text.data() + text.size(), builder.furthest());
  bool parsed = json::sax_parse(begin, end, &builder, json::input_format_t::json, true, false);
  if (!parsed) throw builder.error().value_or(Error("not valid JSON", Mark{}));
  if (builder.root() && builder.root()->type != NodeData::Type::kNull) {
    visit(Node(builder.root()));
  }
}

}  // namespace svcbox::app::yaml
