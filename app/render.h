#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "store/snapshot.h"

// Registry objects shown the way kubectl shows them: tables, JSON and YAML.
namespace svcbox::app {

nlohmann::json toJson(const store::Service& service);
nlohmann::json toJson(const store::Pod& pod);
// A v1 Endpoints object for a Service, built from its resolved endpoints.
nlohmann::json endpointsJson(const store::ServiceEntry& entry);
std::string toYaml(const nlohmann::json& value);

// kubectl's AGE column: 45s, 12m, 5h, 3d.
std::string formatAge(int64_t created_ms, int64_t now_ms);
std::string servicePorts(const store::Service& service);
// "10.0.1.2:8080,10.0.2.2:8080" over ready endpoints; "<none>" when there are none.
std::string readyEndpoints(const store::ServiceEntry& entry, size_t limit);

// Columns padded to their widest cell, three spaces apart, as kubectl prints them.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string render() const;
  size_t size() const { return rows_.size() - 1; }

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace svcbox::app
