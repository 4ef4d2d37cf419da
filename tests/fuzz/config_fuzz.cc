// libFuzzer target for the config file (--config, SVCBOX_CONFIG): any bytes as its text. The
// file is the operator's, but it goes through the same YAML layer as hostile manifests, and a
// CommandError (exit 1 with the line and column) must be the worst any text leads to.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "app/common.h"
#include "app/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace svcbox::app;
  try {
    parseConfig(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const CommandError&) {
  }
  return 0;
}
