#pragma once

#include <string>

namespace svcbox::router {

// What `iptables` means on this host: "legacy", "nf_tables", or "absent". libiptc always writes
// the legacy tables, which an nf_tables iptables does not list.
std::string iptablesFlavor();

// The start-up log line about it: a plain note for legacy, a warning text for nf_tables.
std::string iptablesFlavorNote(const std::string& flavor, bool& is_warning);

}  // namespace svcbox::router
