#pragma once

#include <string>
#include <vector>

#include "router/ruleset.h"

// Rules as `iptables-legacy-save` prints them, so that what svcbox wants and what the kernel holds
// compare as text.
namespace svcbox::router {

// "-A CHAIN -d 10.96.0.10/32 -p tcp -m comment --comment \"ns/web:http\" -m tcp --dport 80 -j X"
std::string ruleText(const std::string& chain, const Rule& rule);

// The table's lines: chain declarations (":SVCBOX-X - [0:0]"), the hook jumps, then every chain's
// rules in order; chains sorted by name.
std::vector<std::string> tableText(const Table& table);

// iptables-save's quoting of a comment: bare when only [A-Za-z0-9_-], else in double quotes.
std::string savedString(const std::string& value);

}  // namespace svcbox::router
