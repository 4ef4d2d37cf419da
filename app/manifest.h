#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/registry.h"

// kubectl-style manifests (multi-document YAML, or JSON) read into registry objects.
namespace svcbox::app {

enum class Validation { kStrict, kWarn, kIgnore };
// Accepts kubectl's spellings: strict, warn, ignore, true, false.
bool parseValidation(const std::string& text, Validation& out);

struct ManifestOptions {
  Validation validation = Validation::kStrict;
  // -n NS: objects without a namespace get it; objects naming another one are an error.
  std::string namespace_name = "default";
  bool namespace_given = false;
  // How the caller can accept unknown fields, said after the error; empty where it cannot (the
  // admin API is strict).
  std::string unknown_field_hint = "--validate=warn accepts it";
};

struct SourcePosition {
  int line = 0;  // 1-based
  int column = 0;
};

struct ManifestObject {
  store::Object object;
  std::string source;                            // file name, or "<stdin>"
  SourcePosition position;                       // of the document
  std::map<std::string, SourcePosition> fields;  // field path -> where it was written

  // "file:line:column" of the field, or of its closest written parent, or of the document.
  std::string locate(const std::string& field) const;
};

// A manifest that cannot be read; what() is "file:line:column: what is wrong".
class ManifestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// kJson is one JSON value (an object, or a List of them), strictly JSON; YAML reads JSON too,
// but its errors would speak of YAML and it would let through what JSON does not allow.
enum class ManifestFormat { kYaml, kJson };

std::vector<ManifestObject> parseManifest(const std::string& text, const std::string& source,
                                          const ManifestOptions& options,
                                          std::vector<std::string>& warnings,
                                          ManifestFormat format = ManifestFormat::kYaml);

// FILE, DIR (its .yaml/.yml/.json files, sorted) or "-" for standard input (read as YAML). Files
// named *.json are read as JSON, as kubectl reads them.
std::vector<ManifestObject> loadManifests(const std::vector<std::string>& paths,
                                          const ManifestOptions& options,
                                          std::vector<std::string>& warnings);

}  // namespace svcbox::app
