#pragma once

#include <string>
#include <utility>
#include <variant>

namespace svcbox::store {

// Expected failures travel as values; the caller decides how to report them.
enum class ErrorKind {
  kInvalid,   // the input is wrong: the user must change it
  kNotFound,  // the named object does not exist
  kConflict,  // the input is well formed but clashes with what the registry holds
  kBusy,      // another writer held the registry past the busy timeout
  kReplaced,  // the file at the registry's path is no longer the one this handle opened
  kInternal,  // SQLite or the file system failed: not the user's fault
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
  // Dotted path of the offending field ("spec.ports[1].port"), when one is to blame.
  std::string field;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<T>(state_); }
  const T& value() const { return std::get<T>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

struct Ok {};
using Status = Result<Ok>;

inline Error invalid(std::string field, std::string message) {
  return Error{ErrorKind::kInvalid, std::move(message), std::move(field)};
}

}  // namespace svcbox::store
