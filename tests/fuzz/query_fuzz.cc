// libFuzzer target for the query path: any bytes as a query against a compiled zone (answered
// with UDP and TCP limits), and the same bytes as an upstream answer for the cache and for an
// ExternalName's CNAME chase; ExternalNames inside the zones (a loop among them) are followed as
// the server follows them. Built with clang 14 only (tests/fuzz/run.sh).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dns/alias_chase.h"
#include "dns/cache.h"
#include "dns/responder.h"

namespace {

using namespace svcbox;

store::ServiceEntry service(const char* ns, const char* name, const char* ip, bool headless) {
  store::ServiceEntry entry;
  entry.service.namespace_name = ns;
  entry.service.name = name;
  entry.service.headless = headless;
  if (!headless) entry.service.cluster_ip = store::IpAddress::parse(ip);
  entry.service.ports.push_back({"http", store::Protocol::kTcp, 80, {8080, ""}});
  if (headless) {
    for (int i = 1; i <= 40; ++i) {
      store::Endpoint endpoint;
      endpoint.ip = *store::IpAddress::parse("10.1.0." + std::to_string(i));
      endpoint.ready = i % 5 != 0;
      endpoint.hostname = i == 1 ? "db-0" : "";
      endpoint.ports = {8080};
      entry.endpoints.push_back(endpoint);
    }
  }
  return entry;
}

store::ServiceEntry externalName(const char* name, const char* target) {
  auto alias = service("default", name, "", false);
  alias.service.type = store::ServiceType::kExternalName;
  alias.service.external_name = target;
  alias.service.cluster_ip.reset();
  return alias;
}

const dns::AnswerTable& table() {
  static const dns::AnswerTablePtr compiled = [] {
    store::Snapshot snapshot(
        3, store::Cidr::parse("10.96.0.0/12"),
        {service("default", "web", "10.96.0.10", false), service("prod", "db", "", true),
         externalName("ext", "example.org"), externalName("to-db", "db.prod.svc.cluster.local."),
         externalName("loop-a", "loop-b.default.svc"),
         externalName("loop-b", "loop-a.default.svc.cluster.local")},
        std::vector<store::PodPtr>{}, {});
    return dns::AnswerTable::build(snapshot, dns::ZoneOptions{});
  }();
  return *compiled;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static dns::AnswerCache cache(dns::CacheOptions{64, 3600, 1800});
  static std::array<uint8_t, dns::kMaxResponse> out;
  std::span<const uint8_t> input(data, size);

  dns::Query query = dns::parseQuery(input);
  for (bool recursion : {false, true}) {
    for (size_t limit : {size_t{query.udpLimit()}, dns::kMaxResponse}) {
      dns::Response response =
          dns::respond(query, table(), dns::ClientContext{recursion, limit}, out);
      if (response.length > out.size()) __builtin_trap();
      if (response.disposition != dns::Disposition::kChaseAlias) continue;
      const std::string& target = table().aliasTarget(*response.alias);
      std::vector<uint8_t> alias_answer(out.begin(), out.begin() + response.length);
      dns::chaseInOwnZones(table(), query, alias_answer, target, limit);
    }
  }
  // The same bytes as an upstream's answer to a fixed question.
  static const std::array<uint8_t, 29> question = {0, 1,   1,   0,   0,   1,   0,   0,   0,   0,
                                                   0, 0,   7,   'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                                   3, 'o', 'r', 'g', 0,   0,   1,   0,   1};
  dns::Query asked = dns::parseQuery(question);
  bool truncated = false;
  cache.relay(asked, input, out, 512, &truncated);
  cache.lookup(asked, out, 512, &truncated);
  dns::combineAliasAnswer(question, input, 4096);
  dns::combineAliasAnswer(question, input, 512, true);
  return 0;
}
