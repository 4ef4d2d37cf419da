#include "router/iptables_flavor.h"

#include <cstdio>
#include <memory>

namespace svcbox::router {

std::string iptablesFlavor() {
  // `iptables -V` prints "iptables v1.8.9 (nf_tables)" or "... (legacy)".
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen("iptables -V 2>/dev/null", "r"), &pclose);
  if (!pipe) return "absent";
  char line[256] = {};
  if (!std::fgets(line, sizeof line, pipe.get())) return "absent";
  std::string text = line;
  if (text.find("nf_tables") != std::string::npos) return "nf_tables";
  if (text.find("legacy") != std::string::npos) return "legacy";
  return "legacy";  // iptables before 1.8 names no flavour: it is legacy
}

std::string iptablesFlavorNote(const std::string& flavor, bool& is_warning) {
  is_warning = flavor == "nf_tables";
  if (flavor == "legacy") {
    return "host iptables is the legacy flavour; svcbox's rules are listed by iptables-save";
  }
  if (flavor == "nf_tables") {
    return "host iptables is the nf_tables flavour, but svcbox writes the legacy tables with "
           "libiptc: list its rules with iptables-legacy-save (or svcbox rules), not iptables-save";
  }
  return "no iptables command found; svcbox writes the legacy tables (list them with "
         "iptables-legacy-save or svcbox rules)";
}

}  // namespace svcbox::router
