#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/sqlite.h"
#include "store/types.h"

// Mapping between the value objects and registry rows. Internal to store/.
namespace svcbox::store::rows {

// Restricts a load to one object; without it every row is read.
struct NameFilter {
  std::string namespace_name;
  std::string name;
  int64_t id = 0;  // when set, the row with this id (the names are ignored)
};

// Objects in row-id order, with their row ids alongside.
template <typename T>
struct Loaded {
  std::vector<int64_t> ids;
  std::vector<T> objects;
  bool empty() const { return objects.empty(); }
};

Loaded<Service> loadServices(sqlite::Connection& db, const std::optional<NameFilter>& filter);
Loaded<Pod> loadPods(sqlite::Connection& db, const std::optional<NameFilter>& filter);
Loaded<EndpointSet> loadEndpointSets(sqlite::Connection& db,
                                     const std::optional<NameFilter>& filter,
                                     EndpointSet::Kind kind);

// Insert (id == 0) or replace the row `id` with its child rows.
void writeService(sqlite::Connection& db, int64_t id, const Service& service);
void writePod(sqlite::Connection& db, int64_t id, const Pod& pod);
void writeEndpointSet(sqlite::Connection& db, int64_t id, const EndpointSet& set);

}  // namespace svcbox::store::rows
