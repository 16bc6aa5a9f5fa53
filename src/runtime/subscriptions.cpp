// The bus side of the runtime: publishing into the journal, subscriptions (the consumers'
// supervisor and its children), replay, journal reads and dead letters.

#include "runtime/runtime_impl.hpp"

#include "adapters/sqlite/private_files.hpp"

#include "core/type_pattern.hpp"
#include "engine/bus/async_handler.hpp"
#include "runtime/runtime_access.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <caf/all.hpp>

#include <filesystem>
#include <stdexcept>

namespace switchboard {

namespace {

constexpr caf::atom_value consumers_name = caf::atom("sb_consume");
constexpr std::size_t tail_capacity = 65'536;

dead_letter_info to_info(const adapters::sqlite::dead_letter& d) {
  return dead_letter_info{d.id,       d.consumer,   d.sequence, d.reason,
                          d.attempts, d.last_error, d.parked_at};
}

}  // namespace

supervisor_spec runtime::impl::consumers_spec() {
  auto spec = actors::supervisor_spec_of("consumers", cfg.supervision);
  std::lock_guard<std::mutex> guard{mu};
  for (auto& [id, entry] : subscriptions)
    spec.children.push_back(actors::consumer_child(entry, ctx));
  return spec;
}

supervisor_actor runtime::impl::consumers() const {
  return caf::actor_cast<supervisor_actor>(sys->registry().get(consumers_name));
}

std::shared_ptr<actors::subscription_entry> runtime::impl::find_by_name(
    const std::string& name) const {
  std::lock_guard<std::mutex> guard{mu};
  for (auto& [id, entry] : subscriptions)
    if (entry->durable && entry->options.name == name)
      return entry;
  return nullptr;
}

/// Asks the consumers supervisor, and waits for its answer.
std::string runtime::impl::request_consumers(const child_spec& spec) {
  std::string error;
  control.run([&] {
    caf::scoped_actor self{*sys};
    self->request(consumers(), std::chrono::seconds(10), start_child_atom_v, spec)
        .receive([](const caf::actor&) {},
                 [&](const caf::error& err) {
                   // "already has a child": the supervisor restarted meanwhile and started it.
                   auto text = actors::describe_exit_reason(err);
                   if (text.find("already has a child") == std::string::npos)
                     error = text;
                 });
  });
  return error;
}

bool runtime::impl::stop_consumer(std::uint64_t id) {
  bool existed = false;
  control.run([&] {
    caf::scoped_actor self{*sys};
    self->request(consumers(), std::chrono::seconds(10), stop_child_atom_v,
                  "subscription-" + std::to_string(id))
        .receive([&](bool found) { existed = found; }, [](const caf::error&) {});
  });
  return existed;
}
child_spec runtime::impl::consumers_child() {
  auto consumers = actors::supervisor_child("consumers", [this] { return consumers_spec(); });
  auto start_consumers = consumers.start;
  consumers.start = [start_consumers](caf::actor_system& s) {
    auto sup = start_consumers(s);
    s.registry().erase(consumers_name);  // put() keeps an existing entry
    s.registry().put(consumers_name, caf::actor_cast<caf::strong_actor_ptr>(sup));
    return sup;
  };
  return consumers;
}

void runtime::impl::open_journal() {
  try {
    // Its owner's alone (0700), like the files in it: leads.db holds names and phone numbers.
    adapters::sqlite::create_private_directories(cfg.data_dir);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string{e.what()} + " (set data_dir or --data-dir)");
  }
  // Before any file of the directory is opened: a second runtime on it must touch nothing.
  dir_lock = std::make_unique<internal::data_dir_lock>(cfg.data_dir);
  journal_opts.path = (std::filesystem::path{cfg.data_dir} / "journal.db").string();
  try {
    writer = std::make_shared<actors::journal_writer>(
        journal_opts,
        [this](std::vector<event_ptr> committed) { tail->append(std::move(committed)); });
    reader = std::make_shared<actors::journal_reader>(journal_opts);
  } catch (const std::exception& e) {
    writer.reset();
    dir_lock.reset();
    throw std::runtime_error("cannot open the journal: " + std::string{e.what()});
  }
  auto last = writer->last_sequence();
  tail = std::make_shared<actors::journal_tail>(tail_capacity, last);
  ctx = std::make_shared<const actors::bus_context>(
      actors::bus_context{tail, writer, reader, unreadable});
  std::lock_guard<std::mutex> guard{mu};
  for (auto& [id, entry] : subscriptions)
    if (!entry->durable)
      entry->progress.store(last);  // ephemeral subscriptions see what comes after now
}

void runtime::publish_async(
    event ev, std::function<void(const publish_receipt*, const std::string& error)> done) {
  auto& d = *impl_;
  if (ev.time.empty())
    ev.time = rfc3339_now();
  if (auto problem = validate_event(ev, d.cfg.limits)) {
    done(nullptr, "event rejected: " + problem->message());
    return;
  }
  // A copy taken under the lock: a publish that passed the check as stop() began still has a
  // writer (which commits it) when stop() lets go of its own.
  std::shared_ptr<actors::journal_writer> writer;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state != impl::phase::running) {
      done(nullptr, d.state == impl::phase::created
                        ? "runtime is not started; call start() first"
                        : "runtime is stopping; the event was not accepted");
      return;
    }
    writer = d.writer;
  }
  auto id = ev.id;
  writer->append(
      std::move(ev), [id = std::move(id), done = std::move(done)](const actors::append_result& r) {
        if (!r.ok) {
          done(nullptr, "event '" + id + "' was not stored: " + r.error +
                            (r.retryable ? " (nothing was stored; publish it again later)" : ""));
          return;
        }
        publish_receipt receipt{id,
                                r.status == adapters::sqlite::append_status::accepted
                                    ? publish_receipt::outcome::accepted
                                    : publish_receipt::outcome::duplicate,
                                r.sequence};
        done(&receipt, {});
      });
}

std::future<publish_receipt> runtime::publish(event ev) {
  auto promise = std::make_shared<std::promise<publish_receipt>>();
  auto result = promise->get_future();
  publish_async(std::move(ev), [promise](const publish_receipt* r, const std::string& error) {
    if (r != nullptr)
      promise->set_value(*r);
    else
      promise->set_exception(std::make_exception_ptr(publish_error(error)));
  });
  return result;
}

subscription runtime::subscribe(const std::string& pattern, event_handler handler) {
  subscription_options opts;
  opts.pattern = pattern;
  return subscribe(std::move(opts), std::move(handler));
}

subscription runtime::subscribe(subscription_options options, event_handler handler) {
  auto& d = *impl_;
  std::string why;
  auto pattern = core::type_pattern::parse(options.pattern, why);
  if (!pattern)
    throw std::invalid_argument(why);
  auto where = "subscribe('" + options.pattern + "'): ";
  if (!handler)
    throw std::invalid_argument(where + "the handler is empty");
  if (options.partitions < 1 || options.partitions > 1024)
    throw std::invalid_argument(where + "partitions is " + std::to_string(options.partitions) +
                                "; use 1 to 1024");
  if (options.max_in_flight < 1)
    throw std::invalid_argument(where + "max_in_flight must be at least 1");
  if (options.retry.max_attempts < 1)
    throw std::invalid_argument(where + "retry.max_attempts must be at least 1");
  if (options.retry.jitter < 0 || options.retry.jitter >= 1)
    throw std::invalid_argument(where + "retry.jitter must be in [0, 1)");
  if (!options.name.empty() && d.find_by_name(options.name))
    throw std::invalid_argument(where + "a subscription named '" + options.name +
                                "' exists already; names identify checkpoints, so use another");
  bool running = false;
  std::shared_ptr<actors::subscription_entry> entry;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state == impl::phase::stopping || d.state == impl::phase::stopped)
      throw std::logic_error(where + "the runtime is stopping");
    entry = std::make_shared<actors::subscription_entry>(d.next_subscription++, options,
                                                         std::move(*pattern), std::move(handler));
    running = d.state == impl::phase::running;
    if (running && !entry->durable)
      entry->progress.store(d.writer->last_sequence());
    d.subscriptions.emplace(entry->id, entry);
  }
  if (running) {
    auto error = d.request_consumers(actors::consumer_child(entry, d.ctx));
    if (!error.empty()) {
      std::lock_guard<std::mutex> guard{d.mu};
      d.subscriptions.erase(entry->id);
      throw std::runtime_error(where + "failed: " + error);
    }
  }
  return subscription{entry->id, options.pattern};
}

void runtime::unsubscribe(const subscription& sub) {
  auto& d = *impl_;
  bool running = false;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.subscriptions.erase(sub.id) == 0)
      return;
    running = d.state == impl::phase::running;
  }
  if (running)
    d.stop_consumer(sub.id);
}

void runtime::replay(const std::string& name, std::uint64_t after_sequence) {
  auto& d = *impl_;
  auto entry = d.find_by_name(name);
  if (!entry)
    throw std::invalid_argument("replay: no durable subscription named '" + name + "'");
  entry->restart_after.store(after_sequence);
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state != impl::phase::running)
      return;  // takes effect when it starts
  }
  d.stop_consumer(entry->id);
  auto error = d.request_consumers(actors::consumer_child(entry, d.ctx));
  if (!error.empty())
    throw std::runtime_error("replay of '" + name + "' failed: " + error);
}

void runtime::replay_from_time(const std::string& name, const std::string& rfc3339) {
  auto& d = *impl_;
  if (!d.writer)
    throw std::logic_error("replay_from_time: the runtime is not started");
  auto seq =
      d.query([&](adapters::sqlite::journal_store& s) { return s.sequence_before_time(rfc3339); });
  if (!seq)
    throw std::invalid_argument("replay_from_time: '" + rfc3339 +
                                "' is not an RFC 3339 time such as 2026-11-23T14:00:00Z");
  replay(name, *seq);
}

std::vector<event> runtime::read(std::uint64_t after, std::size_t limit) const {
  if (!impl_->writer)
    return {};
  return impl_->query(
      [&](adapters::sqlite::journal_store& s) { return s.read_after(after, limit); });
}

journal_page runtime::read_page(std::uint64_t after, std::size_t limit) const {
  if (!impl_->writer)
    return {};
  auto page =
      impl_->query([&](adapters::sqlite::journal_store& s) { return s.read_page(after, limit); });
  for (const auto& row : page.unreadable)
    impl_->unreadable->note(row);
  return page;
}

std::uint64_t runtime::last_sequence() const {
  return impl_->writer ? impl_->writer->last_sequence() : 0;
}

std::vector<dead_letter_info> runtime::dead_letters(const std::string& consumer, std::size_t limit,
                                                    std::uint64_t after_id) const {
  if (!impl_->writer)
    return {};
  std::vector<dead_letter_info> out;
  impl_->query([&](adapters::sqlite::journal_store& s) {
    for (auto& d : s.dead_letters(consumer, limit, after_id))
      out.push_back(to_info(d));
    return 0;
  });
  return out;
}

dead_letter_retry runtime::retry_dead_letter(std::uint64_t id) {
  using outcome = dead_letter_retry::outcome;
  auto& d = *impl_;
  const auto missing = [id](std::string why) {
    return dead_letter_retry{outcome::not_found, "no dead letter with id " + std::to_string(id) +
                                                     std::move(why) +
                                                     "; list them with GET /v1/dead-letters"};
  };
  if (!d.writer)
    return {outcome::not_running, "the runtime is not running"};
  auto letter = d.query([&](adapters::sqlite::journal_store& s) { return s.find_dead_letter(id); });
  if (!letter)
    return missing("");
  std::shared_ptr<actors::subscription_entry> entry;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    for (auto& [sid, e] : d.subscriptions)
      if (e->consumer_name() == letter->consumer)
        entry = e;
  }
  auto consumer = entry ? entry->get_current() : consumer_actor{};
  if (!consumer)
    return {outcome::not_running, "dead letter " + std::to_string(id) +
                                      " belongs to subscription '" + letter->consumer +
                                      "', which is not running in this process; retry it where "
                                      "that subscription runs (or once it is subscribed)"};
  auto page = d.query(
      [&](adapters::sqlite::journal_store& s) { return s.read_page(letter->sequence - 1, 1); });
  if (!page.unreadable.empty())
    // Nothing can be handed on; the dead letter stays for an operator to discard.
    return {outcome::would_skip, "dead letter " + std::to_string(id) + ": journal row " +
                                     std::to_string(letter->sequence) + " cannot be decoded (" +
                                     page.unreadable.front().reason +
                                     "), so there is nothing to hand on; discard it with DELETE "
                                     "/v1/dead-letters/" +
                                     std::to_string(id)};
  auto& events = page.events;
  if (events.empty() || events.front().sequence != letter->sequence)
    return missing(" whose event (journal sequence " + std::to_string(letter->sequence) +
                   ") can be read");
  // A retry the subscription would skip (nothing to apply any more) would answer "retried" and
  // do nothing: say so instead, and keep the dead letter.
  if (const auto* async = entry->handler.target<actors::async_event_handler>();
      async != nullptr && async->skip_reason) {
    auto why = async->skip_reason(events.front());
    if (!why.empty())
      return {outcome::would_skip,
              why + "; nothing was retried and dead letter " + std::to_string(id) +
                  " stays: discard it (DELETE /v1/dead-letters/" + std::to_string(id) +
                  ") or publish a newer event for the entity"};
  }
  if (!discard_dead_letter(id))
    return missing(" any more (retried or discarded meanwhile)");
  caf::anon_send(consumer, redeliver_atom_v,
                 event_ptr{std::make_shared<const event>(std::move(events.front()))});
  return {outcome::retried, {}};
}

bool runtime::discard_dead_letter(std::uint64_t id) {
  auto& d = *impl_;
  if (!d.writer)
    return false;
  auto removed = std::make_shared<bool>(false);
  d.writer->run([id, removed](ports::journal_storage& s) { *removed = s.remove_dead_letter(id); });
  d.writer->flush();
  return *removed;
}

caf::actor_system& internal::runtime_access::system(runtime& rt) { return *rt.impl_->sys; }

caf::actor internal::runtime_access::consumer(runtime& rt, const subscription& sub) {
  std::lock_guard<std::mutex> guard{rt.impl_->mu};
  auto i = rt.impl_->subscriptions.find(sub.id);
  if (i == rt.impl_->subscriptions.end())
    return {};
  return caf::actor_cast<caf::actor>(i->second->get_current());
}

caf::actor internal::runtime_access::consumers(runtime& rt) {
  return caf::actor_cast<caf::actor>(rt.impl_->consumers());
}

}  // namespace switchboard
