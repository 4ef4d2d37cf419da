#pragma once

#include <deque>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// A small read-only YAML tree built with libyaml, one document at a time. Manifests can hold
// tens of thousands of documents: this reads them about ten times faster than yaml-cpp and
// keeps only the current document in memory, with the line and column of every node.
namespace svcbox::app::yaml {

struct Mark {
  int line = 0;  // 0-based, as libyaml reports them
  int column = 0;
};

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, Mark mark) : std::runtime_error(message), mark_(mark) {}
  Mark mark() const { return mark_; }

 private:
  Mark mark_;
};

struct NodeData;

// A view of one node; an absent key or index gives an undefined node.
class Node {
 public:
  Node() = default;
  explicit Node(const NodeData* data) : data_(data) {}
  static Node emptyMap();

  bool IsDefined() const { return data_ != nullptr; }
  bool IsNull() const;
  bool IsScalar() const;
  bool IsSequence() const;
  bool IsMap() const;
  const std::string& Scalar() const;
  // "?" for a plain scalar, "!" for a quoted one, else the explicit tag (yaml-cpp's convention).
  const std::string& Tag() const;
  yaml::Mark Mark() const;
  size_t size() const;
  Node operator[](std::string_view key) const;
  Node operator[](size_t index) const;
  // The (key, value) pairs of a mapping, in document order.
  std::vector<std::pair<Node, Node>> items() const;

 private:
  const NodeData* data_ = nullptr;
};

struct NodeData {
  enum class Type { kNull, kScalar, kSequence, kMap };
  Type type = Type::kNull;
  std::string scalar;
  std::string tag;
  yaml::Mark mark;
  std::vector<const NodeData*> children;  // a sequence's items, or a mapping's keys and values
  // The nodes this one stands for once every alias under it is expanded (itself included).
  size_t expanded = 1;
  bool complete = true;  // false while a sequence or mapping is still being read
};

// What one document may make a reader walk: aliases let a few bytes stand for billions of nodes
// (a "billion laughs") or for a node that contains itself, and every reader of the tree recurses.
inline constexpr size_t kMaxDepth = 64;
inline constexpr size_t kMaxExpandedNodes = 1'000'000;
inline constexpr size_t kMaxExpansionFactor = 10;  // expanded nodes per node written

// What a plain (unquoted) scalar is when it is not a string, as kubectl reads YAML (YAML 1.1
// booleans such as `yes` and `on` included): "a number", "a boolean", or null for a string.
const char* plainScalarType(std::string_view text);

// Calls `visit` with the root of each document in turn. Throws Error, with the line and column,
// on malformed YAML, an alias to a node that contains it, nesting deeper than kMaxDepth, or
// aliases that expand a document past kMaxExpandedNodes or kMaxExpansionFactor times its own
// nodes.
void forEachDocument(std::string_view text, const std::function<void(const Node& root)>& visit);

}  // namespace svcbox::app::yaml
