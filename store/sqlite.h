#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

// A thin RAII layer over the SQLite C API. Failures throw SqliteError; the registry catches it
// at its public boundary and turns it into an Error value.
namespace svcbox::store::sqlite {

class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, int64_t value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, std::nullopt_t);
  Statement& bindOptional(int index, const std::optional<std::string>& value);
  // True while a row is available.
  bool step();
  // Runs to completion; for statements that return no rows.
  void run();
  void reset();

  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool isNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string_view text(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Connection {
 public:
  // Opens (and creates when asked) the file with the settings every svcbox connection uses.
  Connection(const std::string& path, bool create, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }
  void exec(std::string_view sql);
  int64_t queryInteger(std::string_view sql);
  // A prepared statement kept for the connection's lifetime, reset and ready to bind.
  Statement& prepare(const std::string& sql);
  const std::string& path() const { return path_; }
  // Resets every statement left mid-scan. One that is not reset keeps its read transaction open
  // past COMMIT, and a reader stuck in a read transaction never sees another commit (serve's
  // watcher stopped following its registry that way, after a scan returned early).
  void resetActiveStatements();

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

// Rolls back unless commit() was called, so an early return or exception changes nothing. Either
// way every statement of the connection is reset first: no scan outlives its transaction.
class Transaction {
 public:
  enum class Mode { kRead, kWrite };
  Transaction(Connection& connection, Mode mode);
  ~Transaction();
  void commit();

 private:
  Connection& connection_;
  bool open_ = true;
};

[[noreturn]] void throwError(sqlite3* db, int code);

}  // namespace svcbox::store::sqlite
