// libFuzzer target for the manifest reader, built twice: any bytes as a YAML manifest
// (svcbox_manifest_yaml_fuzz, what `apply -f` and the admin API read) or, with
// SVCBOX_FUZZ_JSON=1, as a JSON one (svcbox_manifest_json_fuzz). A ManifestError is the
// expected answer to bad input; anything else escaping, a crash or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "app/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace svcbox::app;
  constexpr ManifestFormat kFormat =
      SVCBOX_FUZZ_JSON ? ManifestFormat::kJson : ManifestFormat::kYaml;
  std::string text(reinterpret_cast<const char*>(data), size);
  ManifestOptions options;
  // Warn rather than refuse unknown fields, so a misspelt key does not hide what follows it.
  options.validation = Validation::kWarn;
  std::vector<std::string> warnings;
  try {
    for (const auto& object : parseManifest(text, "fuzz", options, warnings, kFormat)) {
      object.locate("spec.ports[0].targetPort");
    }
  } catch (const ManifestError&) {
  }
  return 0;
}
