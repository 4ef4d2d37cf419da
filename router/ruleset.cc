#include "router/ruleset.h"

#include <cmath>

namespace svcbox::router {

const Chain* Table::findChain(const std::string& chain_name) const {
  for (const auto& chain : chains) {
    if (chain.name == chain_name) return &chain;
  }
  return nullptr;
}

std::string ipv4Text(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 255) + "." +
         std::to_string((address >> 8) & 255) + "." + std::to_string(address & 255);
}

uint32_t statisticProbability(double p) {
  return static_cast<uint32_t>(std::lround(p * 2147483648.0));
}

}  // namespace svcbox::router
