// The journal writer's promises: an acknowledgement means the event is committed (another
// connection sees it), appends from many producers share commits, and a full disk fails the
// batch without acknowledging anything, after which the writer recovers by itself.

#include "adapters/sqlite/journal_store.hpp"
#include "engine/journal/journal.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

using namespace switchboard;
using namespace switchboard::actors;
using adapters::sqlite::journal_options;
using adapters::sqlite::journal_store;
namespace fs = std::filesystem;

namespace {

struct temp_journal {
  fs::path dir;
  journal_options options;
  temp_journal() {
    static std::atomic<int> counter{0};
    dir = fs::temp_directory_path() /
          ("switchboard-jw-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    fs::remove_all(dir);
    fs::create_directories(dir);
    options.path = (dir / "journal.db").string();
  }
  ~temp_journal() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

event make_event(const std::string& id, std::size_t payload = 16) {
  event ev;
  ev.id = id;
  ev.source = "tests/journal";
  ev.type = "t.x";
  ev.entity_kind = "k";
  ev.entity_id = "e";
  ev.time = "2026-11-23T14:00:00Z";
  ev.data["pad"] = std::string(payload, 'x');
  return ev;
}

struct waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t done = 0;
  void tick() {
    std::lock_guard<std::mutex> guard{mu};
    ++done;
    cv.notify_all();
  }
  bool wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock{mu};
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return done >= n; });
  }
};

}  // namespace

TEST_CASE("an append is acknowledged only once another connection can read it", "[journal]") {
  temp_journal tj;
  std::vector<std::uint64_t> committed;
  journal_writer writer{tj.options, [&](std::vector<event_ptr> evs) {
                          for (auto& e : evs)
                            committed.push_back(*e->sequence);
                        }};
  auto reader_opts = tj.options;
  reader_opts.read_only = true;
  journal_store reader{reader_opts};
  waiter w;
  std::atomic<int> visible_at_ack{0};
  constexpr int producers = 4, each = 250;
  std::vector<std::thread> threads;
  std::mutex reader_mu;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < each; ++i)
        writer.append(make_event("p" + std::to_string(p) + "-" + std::to_string(i)),
                      [&](const append_result& r) {
                        // Runs on the writer thread: count here, assert on the test thread.
                        std::lock_guard<std::mutex> guard{reader_mu};
                        auto got = reader.read_after(r.sequence - 1, 1);
                        if (!got.empty() && got.front().sequence == r.sequence)
                          ++visible_at_ack;
                        w.tick();
                      });
    });
  for (auto& t : threads)
    t.join();
  REQUIRE(w.wait_for(producers * each));
  CHECK(visible_at_ack.load() == producers * each);
  writer.flush();
  CHECK(writer.last_sequence() == producers * each);
  REQUIRE(committed.size() == static_cast<std::size_t>(producers * each));
  CHECK(std::is_sorted(committed.begin(), committed.end()));
}

TEST_CASE("a full disk fails the batch, acknowledges nothing, and the journal recovers",
          "[journal]") {
  temp_journal tj;
  tj.options.synchronous_full = false;
  std::size_t handed_to_bus = 0;
  journal_writer writer{tj.options,
                        [&](std::vector<event_ptr> evs) { handed_to_bus += evs.size(); }};
  // Fill the database close to a small cap.
  writer.run([](auto& s) { s.set_max_page_count(64); });
  writer.flush();

  waiter w;
  std::vector<append_result> results(40);
  for (std::size_t i = 0; i < results.size(); ++i)
    writer.append(make_event("big-" + std::to_string(i), 8 * 1024), [&, i](const append_result& r) {
      results[i] = r;
      w.tick();
    });
  REQUIRE(w.wait_for(results.size()));
  std::size_t failed = 0;
  std::uint64_t last_ok = 0;
  for (auto& r : results) {
    if (r.ok) {
      last_ok = std::max(last_ok, r.sequence);
    } else {
      ++failed;
      CHECK(r.retryable);
      CHECK(r.error.find("full") != std::string::npos);
    }
  }
  REQUIRE(failed > 0);  // 40 × 8 KiB does not fit in 64 pages
  CHECK(handed_to_bus == results.size() - failed);
  CHECK(writer.last_sequence() == last_ok);

  // Space comes back: the next appends succeed with the next sequence, earlier data intact.
  writer.run([&](auto& s) { s.set_max_page_count(1'000'000); });
  bool ok = false;
  std::uint64_t seq = 0;
  waiter w2;
  writer.append(make_event("after-recovery"), [&](const append_result& r) {
    ok = r.ok;
    seq = r.sequence;
    w2.tick();
  });
  REQUIRE(w2.wait_for(1));
  CHECK(ok);
  CHECK(seq == last_ok + 1);
  auto reader_opts = tj.options;
  reader_opts.read_only = true;
  journal_store reader{reader_opts};
  auto all = reader.read_after(0, 1000);
  CHECK(all.size() == results.size() - failed + 1);
  CHECK(all.back().id == "after-recovery");
}
