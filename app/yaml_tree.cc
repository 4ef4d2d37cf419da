#include "app/yaml_tree.h"

#include <yaml.h>

#include <algorithm>
#include <map>
#include <regex>
#include <string>

namespace svcbox::app::yaml {
namespace {

const std::string kEmpty;

bool isNullScalar(const std::string& text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

// Owns the libyaml parser and event so an exception cannot leak them.
class Parser {
 public:
  explicit Parser(std::string_view text) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~Parser() {
    if (has_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  const yaml_event_t& next() {
    if (has_event_) yaml_event_delete(&event_);
    has_event_ = false;
    if (!yaml_parser_parse(&parser_, &event_)) {
      std::string problem = parser_.problem ? parser_.problem : "malformed YAML";
      if (parser_.context) problem = std::string(parser_.context) + ": " + problem;
      throw Error(problem, Mark{static_cast<int>(parser_.problem_mark.line),
                                static_cast<int>(parser_.problem_mark.column)});
    }
    has_event_ = true;
    return event_;
  }

 private:
  yaml_parser_t parser_;
  yaml_event_t event_;
  bool has_event_ = false;
};

std::string text(const yaml_char_t* value) {
  return value ? reinterpret_cast<const char*>(value) : "";
}

// Builds one document's nodes from its events.
class DocumentBuilder {
 public:
  // Returns the root, or nullptr for an empty document.
  const NodeData* build(Parser& parser) {
    nodes_.clear();
    anchors_.clear();
    const NodeData* root = nullptr;
    std::vector<NodeData*> open;
    for (;;) {
      const auto& event = parser.next();
      Mark mark{static_cast<int>(event.start_mark.line), static_cast<int>(event.start_mark.column)};
      NodeData* node = nullptr;
      const NodeData* alias = nullptr;
      const yaml_char_t* anchor = nullptr;
      switch (event.type) {
        case YAML_DOCUMENT_END_EVENT:
          checkExpansion(root);
          return root;
        case YAML_SCALAR_EVENT: {
          node = &nodes_.emplace_back();
          node->scalar.assign(reinterpret_cast<const char*>(event.data.scalar.value),
                              event.data.scalar.length);
          bool plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
          node->tag = event.data.scalar.tag ? text(event.data.scalar.tag) : plain ? "?" : "!";
          node->type = plain && !event.data.scalar.tag && isNullScalar(node->scalar)
                           ? NodeData::Type::kNull
                           : NodeData::Type::kScalar;
          anchor = event.data.scalar.anchor;
          break;
        }
        case YAML_SEQUENCE_START_EVENT:
          node = &nodes_.emplace_back();
          node->type = NodeData::Type::kSequence;
          node->tag = text(event.data.sequence_start.tag);
          anchor = event.data.sequence_start.anchor;
          break;
        case YAML_MAPPING_START_EVENT:
          node = &nodes_.emplace_back();
          node->type = NodeData::Type::kMap;
          node->tag = text(event.data.mapping_start.tag);
          anchor = event.data.mapping_start.anchor;
          break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
          close(*open.back());
          open.pop_back();
          continue;
        case YAML_ALIAS_EVENT: {
          auto it = anchors_.find(text(event.data.alias.anchor));
          if (it == anchors_.end()) {
            throw Error("alias *" + text(event.data.alias.anchor) + " names no anchor", mark);
          }
          alias = it->second;
          if (!alias->complete) {
            throw Error("alias *" + text(event.data.alias.anchor) +
                            " stands for a node that contains it: a cycle, refused",
                        mark);
          }
          break;
        }
        default:
          continue;  // stream and document starts carry nothing to keep
      }
      const NodeData* added = node ? node : alias;
      if (node) node->mark = mark;
      if (anchor) anchors_[text(anchor)] = node;
      if (open.empty()) {
        root = added;
      } else {
        open.back()->children.push_back(added);
      }
      if (node && node->type != NodeData::Type::kScalar && node->type != NodeData::Type::kNull) {
        if (open.size() >= kMaxDepth) {
          throw Error("nested deeper than " + std::to_string(kMaxDepth) + " levels", mark);
        }
        node->complete = false;
        open.push_back(node);
      }
    }
  }

 private:
  // Counts what the finished collection stands for, its aliases expanded; saturates past the cap
  // so that no count overflows.
  static void close(NodeData& node) {
    size_t expanded = 1;
    for (const NodeData* child : node.children) {
      expanded = std::min(expanded + child->expanded, kMaxExpandedNodes + 1);
    }
    if (expanded > kMaxExpandedNodes) {
      throw Error("aliases expand this to more than " + std::to_string(kMaxExpandedNodes) +
                      " nodes, refused",
                  node.mark);
    }
    node.expanded = expanded;
    node.complete = true;
  }

  void checkExpansion(const NodeData* root) const {
    if (!root || root->expanded <= kMaxExpansionFactor * nodes_.size()) return;
    throw Error("aliases expand this document to " + std::to_string(root->expanded) +
                    " nodes, more than " + std::to_string(kMaxExpansionFactor) + " times the " +
                    std::to_string(nodes_.size()) + " it holds, refused",
                root->mark);
  }

  std::deque<NodeData> nodes_;  // a deque keeps addresses stable as it grows
  std::map<std::string, const NodeData*> anchors_;
};

}  // namespace

Node Node::emptyMap() {
  static const NodeData kEmptyMap{NodeData::Type::kMap, {}, {}, {}, {}, 1, true};
  return Node(&kEmptyMap);
}

bool Node::IsNull() const { return data_ && data_->type == NodeData::Type::kNull; }
bool Node::IsScalar() const {
  return data_ && (data_->type == NodeData::Type::kScalar || data_->type == NodeData::Type::kNull);
}
bool Node::IsSequence() const { return data_ && data_->type == NodeData::Type::kSequence; }
bool Node::IsMap() const { return data_ && data_->type == NodeData::Type::kMap; }
const std::string& Node::Scalar() const { return data_ ? data_->scalar : kEmpty; }
const std::string& Node::Tag() const { return data_ ? data_->tag : kEmpty; }
Mark Node::Mark() const { return data_ ? data_->mark : yaml::Mark{}; }

size_t Node::size() const {
  if (IsSequence()) return data_->children.size();
  if (IsMap()) return data_->children.size() / 2;
  return 0;
}

Node Node::operator[](std::string_view key) const {
  if (!IsMap()) return Node();
  const auto& children = data_->children;
  for (size_t i = 0; i + 1 < children.size(); i += 2) {
    if (children[i]->type != NodeData::Type::kSequence &&
        children[i]->type != NodeData::Type::kMap && children[i]->scalar == key) {
      return Node(children[i + 1]);
    }
  }
  return Node();
}

Node Node::operator[](size_t index) const {
  if (!IsSequence() || index >= data_->children.size()) return Node();
  return Node(data_->children[index]);
}

std::vector<std::pair<Node, Node>> Node::items() const {
  std::vector<std::pair<Node, Node>> pairs;
  if (!IsMap()) return pairs;
  const auto& children = data_->children;
  for (size_t i = 0; i + 1 < children.size(); i += 2) {
    pairs.emplace_back(Node(children[i]), Node(children[i + 1]));
  }
  return pairs;
}

const char* plainScalarType(std::string_view text) {
  static const std::regex kBoolean(
      "y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF");
  static const std::regex kNumber(
      "[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*|"
      "(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?|\\.(inf|Inf|INF))|"
      "\\.(nan|NaN|NAN)");
  std::string value(text);
  if (std::regex_match(value, kBoolean)) return "a boolean";
  if (std::regex_match(value, kNumber)) return "a number";
  return nullptr;
}

void forEachDocument(std::string_view text, const std::function<void(const Node& root)>& visit) {
  Parser parser(text);
  DocumentBuilder builder;
  for (;;) {
    const auto& event = parser.next();
    if (event.type == YAML_STREAM_END_EVENT) return;
    if (event.type != YAML_DOCUMENT_START_EVENT) continue;
    const NodeData* root = builder.build(parser);
    if (root && root->type != NodeData::Type::kNull) visit(Node(root));
  }
}

}  // namespace svcbox::app::yaml
