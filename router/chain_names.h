#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Names of the chains svcbox owns. Every one starts with "SVCBOX-" and fits the kernel's 28
// characters; per-Service names carry a hash because namespace/name:port does not fit.
namespace svcbox::router {

constexpr std::string_view kOwnedPrefix = "SVCBOX-";
constexpr size_t kMaxChainNameLength = 28;

constexpr const char* kServicesChain = "SVCBOX-SERVICES";
constexpr const char* kPostroutingChain = "SVCBOX-POSTROUTING";
constexpr const char* kMarkMasqueradeChain = "SVCBOX-MARK-MASQ";
constexpr const char* kForwardChain = "SVCBOX-FORWARD";
constexpr const char* kCanaryChain = "SVCBOX-CANARY";
// REDIRECT mode's filter INPUT chain: the listeners take only what the nat rules redirected.
constexpr const char* kProxyInputChain = "SVCBOX-PROXY-INPUT";

bool isOwnedChain(std::string_view name);

// FNV-1a 64 in RFC 4648 base32 without padding (13 characters): short, stable across versions
// and easy to recompute in a test with a few lines of Python.
std::string nameHash(std::string_view text);

// "SVCBOX-SVC-<hash of ns/name:port/proto>"
std::string serviceChainName(std::string_view service_port_key);
// "SVCBOX-AFF-<hash>": the recent-match list remembering clients of one endpoint.
std::string affinityListName(std::string_view service_port_key, std::string_view endpoint);
// "SVCBOX-IP-10.96.3.0-24": dispatch for the ClusterIPs under one prefix.
std::string bucketChainName(uint32_t network, int prefix_length);

}  // namespace svcbox::router
