// embed_example: a host application that embeds switchboard through its public API only
// (switchboard/runtime.hpp). It subscribes to `greeting.*`, publishes three events, waits
// until its handler has seen all of them, and stops the runtime with a drain. The journal
// lives in a fresh temporary directory, removed at the end, so every run starts empty.
//
// Prints `embed: handled 3 events` and exits 0, or says what went wrong and exits 1.

#include "switchboard/runtime.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace {

constexpr std::size_t event_count = 3;
constexpr auto time_bound = std::chrono::seconds(10);

// What the handler saw. The handler runs on one of the runtime's threads, main() waits on
// another, so everything here is guarded by `mutex`.
struct greetings_seen {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> texts;
};

// A directory that is removed, with the journal in it, when the example ends.
struct scratch_dir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("switchboard-embed-" + std::to_string(::getpid()));
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

switchboard::event make_greeting(std::size_t n) {
  switchboard::event ev;
  ev.id = "greeting-" + std::to_string(n);
  ev.type = "greeting.sent";
  ev.source = "examples/embed";
  ev.entity_kind = "person";
  ev.entity_id = "p-" + std::to_string(n);
  ev.data = {{"text", "hello " + std::to_string(n)}};
  return ev;
}

int fail(const std::string& why) {
  std::cerr << "embed: " << why << '\n';
  return 1;
}

int run() {
  scratch_dir data;
  switchboard::config cfg;
  cfg.http.enabled = false;  // a library inside a host app: no HTTP server of its own
  cfg.data_dir = data.path.string();
  cfg.log.level = "warn";

  greetings_seen seen;  // outlives the runtime, whose destructor may still run the handler
  switchboard::runtime rt{cfg};
  rt.start();

  rt.subscribe("greeting.*", [&seen](const switchboard::event& ev) {
    const auto* text = ev.data.if_contains("text");
    std::lock_guard<std::mutex> lock{seen.mutex};
    seen.texts.emplace_back(text != nullptr && text->is_string() ? text->as_string().c_str()
                                                                 : "<no text>");
    seen.changed.notify_all();
  });

  for (std::size_t n = 1; n <= event_count; ++n) {
    auto receipt = rt.publish(make_greeting(n));
    if (receipt.wait_for(time_bound) != std::future_status::ready)
      return fail("publish of event " + std::to_string(n) + " not stored within 10 s");
    const auto stored = receipt.get();  // throws publish_error if the event was refused
    if (stored.status != switchboard::publish_receipt::outcome::accepted)
      return fail("event " + stored.id + " was taken for a duplicate in a fresh journal");
  }

  std::vector<std::string> texts;
  {
    std::unique_lock<std::mutex> lock{seen.mutex};
    seen.changed.wait_for(lock, time_bound, [&] { return seen.texts.size() >= event_count; });
    texts = seen.texts;
  }
  const auto outcome = rt.stop();

  if (texts.size() != event_count)
    return fail("handler saw " + std::to_string(texts.size()) + " of " +
                std::to_string(event_count) + " events within 10 s");
  for (std::size_t n = 1; n <= event_count; ++n) {
    const auto expected = "hello " + std::to_string(n);
    if (texts[n - 1] != expected)
      return fail("event " + std::to_string(n) + " carried '" + texts[n - 1] + "', expected '" +
                  expected + "'");
  }
  if (outcome.failed)
    return fail("runtime failed: " + outcome.reason);

  std::cout << "embed: handled " << texts.size() << " events" << std::endl;
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
