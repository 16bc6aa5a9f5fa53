#include "adapters/sqlite/lookup_db.hpp"

#include <sqlite3.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <utility>

namespace switchboard::adapters::sqlite {

namespace {

std::string base64(const unsigned char* data, std::size_t size) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (std::size_t i = 0; i < size; i += 3) {
    const std::uint32_t b0 = data[i];
    const std::uint32_t b1 = i + 1 < size ? data[i + 1] : 0;
    const std::uint32_t b2 = i + 2 < size ? data[i + 2] : 0;
    const std::uint32_t n = (b0 << 16) | (b1 << 8) | b2;
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < size ? alphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < size ? alphabet[n & 63] : '=');
  }
  return out;
}

bool blank(const char* s) {
  for (; s != nullptr && *s != '\0'; ++s)
    if (std::isspace(static_cast<unsigned char>(*s)) == 0 && *s != ';')
      return false;
  return true;
}

/// One read-only connection with every lookup prepared.
struct connection {
  sqlite3* db = nullptr;
  std::vector<sqlite3_stmt*> statements;

  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    for (auto* s : statements)
      sqlite3_finalize(s);
    sqlite3_close(db);
  }
};

std::string key_of(std::size_t i, const lookup_config& l, const char* member) {
  return "enrichment.lookups[" + std::to_string(i) + "]." + member + " (lookup '" + l.name + "')";
}

std::unique_ptr<connection> open_connection(const enrichment_config& cfg) {
  auto c = std::make_unique<connection>();
  const int rc = sqlite3_open_v2(cfg.database.c_str(), &c->db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK)
    throw lookup_config_error(
        "enrichment.database: cannot open '" + cfg.database +
        "' read-only: " + (c->db != nullptr ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc)) +
        "; check that the file exists and that switchboard may read it (and its directory)");
  sqlite3_busy_timeout(c->db, 5000);
  for (std::size_t i = 0; i < cfg.lookups.size(); ++i) {
    const auto& l = cfg.lookups[i];
    sqlite3_stmt* s = nullptr;
    const char* tail = nullptr;
    if (sqlite3_prepare_v3(c->db, l.sql.c_str(), static_cast<int>(l.sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &s, &tail) != SQLITE_OK)
      throw lookup_config_error(key_of(i, l, "sql") + ": " + sqlite3_errmsg(c->db) +
                                "; fix the SQL (try it with: sqlite3 -readonly '" + cfg.database +
                                "' '<the sql>') or point enrichment.database at the right file");
    c->statements.push_back(s);  // owned from here on, also if a check below throws
    if (s == nullptr)
      throw lookup_config_error(key_of(i, l, "sql") +
                                ": is empty; give one SELECT with `?` "
                                "placeholders");
    if (!blank(tail))
      throw lookup_config_error(key_of(i, l, "sql") + ": holds more than one statement (from '" +
                                std::string(tail).substr(0, 40) +
                                "'); a lookup is exactly one SELECT");
    if (sqlite3_stmt_readonly(s) == 0 || sqlite3_column_count(s) == 0)
      throw lookup_config_error(key_of(i, l, "sql") +
                                ": is not a SELECT (it would change the "
                                "database or returns no columns); a lookup only reads: write one "
                                "SELECT");
    const auto placeholders = static_cast<std::size_t>(sqlite3_bind_parameter_count(s));
    if (placeholders != l.params.size())
      throw lookup_config_error(key_of(i, l, "params") + ": has " +
                                std::to_string(l.params.size()) + " entr" +
                                (l.params.size() == 1 ? "y" : "ies") + " but the SQL has " +
                                std::to_string(placeholders) +
                                " placeholder(s); give one dotted "
                                "state path per `?`, in order");
  }
  return c;
}

void bind(sqlite3_stmt* s, int index, const boost::json::value& v, std::string& scratch) {
  switch (v.kind()) {
    case boost::json::kind::string:
      sqlite3_bind_text(s, index, v.get_string().data(), static_cast<int>(v.get_string().size()),
                        SQLITE_STATIC);  // `v` outlives the step
      return;
    case boost::json::kind::int64: sqlite3_bind_int64(s, index, v.get_int64()); return;
    case boost::json::kind::uint64:
      if (v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<sqlite3_int64>::max()))
        sqlite3_bind_int64(s, index, static_cast<sqlite3_int64>(v.get_uint64()));
      else
        sqlite3_bind_double(s, index, static_cast<double>(v.get_uint64()));
      return;
    case boost::json::kind::double_: sqlite3_bind_double(s, index, v.get_double()); return;
    case boost::json::kind::bool_: sqlite3_bind_int(s, index, v.get_bool() ? 1 : 0); return;
    case boost::json::kind::null: sqlite3_bind_null(s, index); return;
    case boost::json::kind::object:
    case boost::json::kind::array:
      scratch = boost::json::serialize(v);
      sqlite3_bind_text(s, index, scratch.data(), static_cast<int>(scratch.size()),
                        SQLITE_TRANSIENT);
      return;
  }
}

}  // namespace

struct lookup_db::impl {
  enrichment_config cfg;
  std::mutex mu;
  std::condition_variable freed;
  std::vector<std::unique_ptr<connection>> pool;
  std::vector<connection*> idle;

  connection* acquire() {
    std::unique_lock<std::mutex> lock{mu};
    freed.wait(lock, [&] { return !idle.empty(); });
    auto* c = idle.back();
    idle.pop_back();
    return c;
  }
  void release(connection* c) {
    {
      std::lock_guard<std::mutex> guard{mu};
      idle.push_back(c);
    }
    freed.notify_one();
  }
};

lookup_db::lookup_db(const enrichment_config& cfg, std::size_t connections)
    : impl_(std::make_unique<impl>()) {
  impl_->cfg = cfg;
  if (cfg.database.empty() && !cfg.lookups.empty())
    throw lookup_config_error("enrichment.database: is empty but " +
                              std::to_string(cfg.lookups.size()) +
                              " lookup(s) are configured; set it to the SQLite file that holds "
                              "the looked-up tables");
  if (cfg.database.empty())
    return;
  for (std::size_t i = 0; i < std::max<std::size_t>(connections, 1); ++i) {
    impl_->pool.push_back(open_connection(cfg));
    impl_->idle.push_back(impl_->pool.back().get());
  }
}

lookup_db::~lookup_db() = default;

std::size_t lookup_db::lookup_count() const { return impl_->cfg.lookups.size(); }

boost::json::value lookup_db::query(std::size_t index,
                                    const std::vector<boost::json::value>& params) {
  if (index >= impl_->cfg.lookups.size() || impl_->pool.empty())
    throw std::out_of_range("lookup_db: no lookup number " + std::to_string(index));
  const auto& l = impl_->cfg.lookups[index];
  if (params.size() != l.params.size())
    throw std::invalid_argument("lookup '" + l.name + "': " + std::to_string(params.size()) +
                                " parameter(s) given, " + std::to_string(l.params.size()) +
                                " expected");
  auto* c = impl_->acquire();
  struct releaser {
    impl* owner;
    connection* c;
    sqlite3_stmt* s;
    ~releaser() {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
      owner->release(c);
    }
  } guard{impl_.get(), c, c->statements[index]};
  sqlite3_stmt* s = guard.s;
  std::string scratch;
  for (std::size_t i = 0; i < params.size(); ++i)
    bind(s, static_cast<int>(i + 1), params[i], scratch);
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE)
    return nullptr;
  if (rc != SQLITE_ROW)
    throw std::runtime_error(
        "lookup '" + l.name + "' in '" + impl_->cfg.database +
        "' failed: " + sqlite3_errmsg(c->db) +
        (rc == SQLITE_BUSY ? std::string("; the database stayed locked for 5 s; it is retried")
                           : "; the database or its schema changed under enrichment.lookups[" +
                                 std::to_string(index) +
                                 "].sql: fix one to match the other, then retry the "
                                 "dead letters"));
  boost::json::object row;
  const int columns = sqlite3_column_count(s);
  for (int i = 0; i < columns; ++i) {
    const char* name = sqlite3_column_name(s, i);
    auto& slot = row[name != nullptr ? name : std::to_string(i)];
    switch (sqlite3_column_type(s, i)) {
      case SQLITE_INTEGER: slot = static_cast<std::int64_t>(sqlite3_column_int64(s, i)); break;
      case SQLITE_FLOAT: slot = sqlite3_column_double(s, i); break;
      case SQLITE_TEXT:
        slot = boost::json::string_view(reinterpret_cast<const char*>(sqlite3_column_text(s, i)),
                                        static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
        break;
      case SQLITE_BLOB:
        slot = base64(static_cast<const unsigned char*>(sqlite3_column_blob(s, i)),
                      static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
        break;
      default: slot = nullptr; break;
    }
  }
  return row;
}

}  // namespace switchboard::adapters::sqlite
