#pragma once

#include <functional>
#include <string_view>

#include "app/yaml_tree.h"

// JSON read into the YAML tree (JSON is the part of YAML manifests use), so that one set of
// readers checks manifests in either form and names the line and column of what is wrong.
namespace svcbox::app::yaml {

// Calls `visit` with the root of the one JSON value `text` holds, unless that value is null.
// Strings (keys too) become quoted scalars (tag "!"), numbers and booleans plain ones (tag "?")
// spelled as a YAML reader would see them, so a reader tells `1` from `"1"` in both forms.
// Throws Error, with the line and column, on anything but strict JSON (one value, no comments,
// UTF-8) and on nesting deeper than kMaxDepth.
void readJson(std::string_view text, const std::function<void(const Node& root)>& visit);

}  // namespace svcbox::app::yaml
