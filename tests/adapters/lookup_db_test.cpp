// The enrichment database adapter (src/adapters/sqlite/lookup_db.cpp) against a real SQLite
// file standing in for the CRM's, made fresh in a temporary directory per test.

#include "adapters/sqlite/lookup_db.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using namespace switchboard;
using namespace switchboard::adapters::sqlite;
namespace json = boost::json;

namespace {

using switchboard::testing::temp_dir;

std::string make_crm(const temp_dir& dir) {
  const auto path = dir.file("crm.db");
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(R"sql(
    CREATE TABLE managers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL,
                           photo BLOB, phone TEXT);
    INSERT INTO managers VALUES (42, 'Ann Smith', 'ann@example.com', 4.5, x'01020304ff', NULL);
    INSERT INTO managers VALUES (43, 'Bob Jones', 'bob@example.com', 3.0, x'', '+15550100');
  )sql");
  return path;
}

lookup_config lookup(std::string name, std::string sql, std::vector<std::string> params) {
  lookup_config l;
  l.name = std::move(name);
  l.entity_kind = "application";
  l.sql = std::move(sql);
  l.params = std::move(params);
  l.into = "manager";
  return l;
}

std::string start_error(const enrichment_config& cfg) {
  try {
    lookup_db db(cfg);
  } catch (const lookup_config_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("lookup_db: the first row comes back as an object of typed columns", "[lookup_db]") {
  temp_dir dir;
  enrichment_config cfg;
  cfg.database = make_crm(dir);
  cfg.lookups.push_back(lookup("manager",
                               "SELECT id, name, email, score, photo, phone FROM managers "
                               "WHERE id = ?",
                               {"managerId"}));
  cfg.lookups.push_back(
      lookup("by_email", "SELECT name FROM managers WHERE email = ? ORDER BY id", {"email"}));
  lookup_db db(cfg);
  CHECK(db.lookup_count() == 2);

  const auto ann = db.query(0, {42});
  CHECK(ann == json::parse(R"({"id":42,"name":"Ann Smith","email":"ann@example.com",
                               "score":4.5,"photo":"AQIDBP8=","phone":null})"));
  CHECK(db.query(0, {43}).at("photo") == "");
  CHECK(db.query(0, {"43"}).at("name") == "Bob Jones");  // SQLite's affinity converts the text
  CHECK(db.query(0, {999}).is_null());
  CHECK(db.query(1, {"bob@example.com"}) == json::parse(R"({"name":"Bob Jones"})"));
}

TEST_CASE("lookup_db: parameters are bound, never spliced into the SQL", "[lookup_db]") {
  temp_dir dir;
  enrichment_config cfg;
  cfg.database = make_crm(dir);
  cfg.lookups.push_back(lookup("by_email", "SELECT name FROM managers WHERE email = ?", {"e"}));
  lookup_db db(cfg);
  CHECK(db.query(0, {"x' OR '1'='1"}).is_null());
  CHECK(db.query(0, {"'; DROP TABLE managers; --"}).is_null());
  CHECK(db.query(0, {"ann@example.com"}).at("name") == "Ann Smith");
}

TEST_CASE("lookup_db: start-up checks name the config key and the fix", "[lookup_db]") {
  temp_dir dir;
  enrichment_config cfg;
  cfg.database = make_crm(dir);
  cfg.lookups.push_back(lookup("manager", "SELECT name FROM managers WHERE id = ?", {"m"}));

  SECTION("a missing table") {
    cfg.lookups.push_back(
        lookup("account_manager", "SELECT name FROM account_managers WHERE id = ?", {"m"}));
    const auto e = start_error(cfg);
    CHECK_THAT(e, Catch::StartsWith("enrichment.lookups[1].sql (lookup 'account_manager'): "
                                    "no such table: account_managers"));
    CHECK_THAT(e, Catch::Contains("fix the SQL"));
  }
  SECTION("placeholders and params disagree") {
    cfg.lookups[0].params = {"a", "b"};
    const auto e = start_error(cfg);
    CHECK_THAT(e, Catch::StartsWith("enrichment.lookups[0].params (lookup 'manager'): has 2 "
                                    "entries but the SQL has 1 placeholder(s)"));
  }
  SECTION("a statement that writes") {
    cfg.lookups[0].sql = "UPDATE managers SET name = 'x' WHERE id = ?";
    CHECK_THAT(start_error(cfg),
               Catch::StartsWith("enrichment.lookups[0].sql (lookup 'manager'): is not a SELECT"));
  }
  SECTION("two statements") {
    cfg.lookups[0].sql = "SELECT name FROM managers WHERE id = ?; DELETE FROM managers";
    CHECK_THAT(start_error(cfg), Catch::Contains("holds more than one statement"));
  }
  SECTION("a trailing semicolon is fine") {
    cfg.lookups[0].sql = "SELECT name FROM managers WHERE id = ?;  ";
    CHECK(start_error(cfg) == "(no error)");
  }
  SECTION("a missing database file is not created") {
    cfg.database = dir.file("nope.db");
    CHECK_THAT(start_error(cfg), Catch::StartsWith("enrichment.database: cannot open '" +
                                                   cfg.database + "' read-only"));
    CHECK_FALSE(std::filesystem::exists(cfg.database));
  }
  SECTION("lookups without a database") {
    cfg.database.clear();
    CHECK_THAT(start_error(cfg), Catch::StartsWith("enrichment.database: is empty"));
  }
}

TEST_CASE("lookup_db: the database is opened read-only", "[lookup_db]") {
  temp_dir dir;
  enrichment_config cfg;
  cfg.database = make_crm(dir);
  cfg.lookups.push_back(lookup("manager", "SELECT name FROM managers WHERE id = ?", {"m"}));
  lookup_db db(cfg);
  CHECK(db.query(0, {42}).at("name") == "Ann Smith");
  // The CRM keeps writing while we read.
  SQLite::Database crm(cfg.database, SQLite::OPEN_READWRITE);
  crm.exec("UPDATE managers SET name = 'Ann Jones' WHERE id = 42");
  CHECK(db.query(0, {42}).at("name") == "Ann Jones");
}

TEST_CASE("lookup_db: queries from several threads share the connection pool", "[lookup_db]") {
  temp_dir dir;
  enrichment_config cfg;
  cfg.database = make_crm(dir);
  cfg.lookups.push_back(lookup("manager", "SELECT name FROM managers WHERE id = ?", {"m"}));
  lookup_db db(cfg, 2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const bool ann = (i + t) % 2 == 0;
        const auto row = db.query(0, {ann ? 42 : 43});
        if (row.at("name") != (ann ? "Ann Smith" : "Bob Jones"))
          ++wrong;
      }
    });
  for (auto& th : threads)
    th.join();
  CHECK(wrong == 0);
}
