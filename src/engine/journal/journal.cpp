#include "engine/journal/journal.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace switchboard::actors {

using ports::store_error;

journal_writer::journal_writer(ports::journal_options options, committed_callback on_committed,
                               std::size_t max_batch)
    : options_(std::move(options)),
      store_(ports::open_journal_storage(options_)),
      on_committed_(std::move(on_committed)),
      max_batch_(std::max<std::size_t>(1, max_batch)) {
  last_sequence_ = store_->last_sequence();
  thread_ = std::thread([this] { loop(); });
}

journal_writer::~journal_writer() {
  {
    std::lock_guard<std::mutex> guard{mu_};
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void journal_writer::append(event ev, append_callback done) {
  {
    std::lock_guard<std::mutex> guard{mu_};
    appends_.push_back(pending_append{std::move(ev), std::move(done)});
    ++submitted_;
  }
  wake_.notify_one();
}

void journal_writer::save_checkpoint(const std::string& consumer, std::uint64_t sequence) {
  {
    std::lock_guard<std::mutex> guard{mu_};
    auto& slot = checkpoints_[consumer];
    slot = std::max(slot, sequence);
    ++submitted_;
    ++checkpoint_calls_;
  }
  wake_.notify_one();
}

void journal_writer::park(ports::dead_letter letter, park_callback done) {
  {
    std::lock_guard<std::mutex> guard{mu_};
    parks_.push_back(pending_park{std::move(letter), std::move(done)});
    ++submitted_;
  }
  wake_.notify_one();
}

void journal_writer::run(std::function<void(ports::journal_storage&)> fn) {
  {
    std::lock_guard<std::mutex> guard{mu_};
    jobs_.push_back(std::move(fn));
    ++submitted_;
  }
  wake_.notify_one();
}

std::uint64_t journal_writer::last_sequence() const {
  std::lock_guard<std::mutex> guard{mu_};
  return last_sequence_;
}

void journal_writer::flush() {
  std::unique_lock<std::mutex> lock{mu_};
  auto target = submitted_;
  idle_.wait(lock, [&] { return completed_ >= target; });
}

void journal_writer::write_appends(std::vector<pending_append>& batch) {
  std::vector<event> events;
  events.reserve(batch.size());
  for (auto& p : batch)
    events.push_back(std::move(p.ev));
  std::vector<ports::append_outcome> outcomes;
  append_result failure;
  try {
    outcomes = store_->append(events);
  } catch (const store_error& e) {
    failure.error = e.what();
    failure.retryable = e.retryable();
  } catch (const std::exception& e) {
    failure.error = std::string{"journal write failed: "} + e.what();
  }
  if (outcomes.size() != events.size()) {
    spdlog::error("journal: a batch of {} event(s) was not stored: {}", events.size(),
                  failure.error);
    for (auto& p : batch)
      if (p.done)
        p.done(failure);
    return;
  }
  std::vector<event_ptr> committed;
  committed.reserve(events.size());
  std::uint64_t highest = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (outcomes[i].status == ports::append_status::accepted) {
      highest = std::max(highest, outcomes[i].sequence);
      events[i].sequence = outcomes[i].sequence;
      committed.push_back(std::make_shared<const event>(std::move(events[i])));
    }
  }
  if (highest != 0) {
    std::lock_guard<std::mutex> guard{mu_};
    last_sequence_ = std::max(last_sequence_, highest);
  }
  if (!committed.empty() && on_committed_)
    on_committed_(std::move(committed));
  // Acknowledged last: whoever learns that an event is stored also finds it in last_sequence()
  // and on its way to the subscriptions.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].done)
      continue;
    append_result r;
    r.ok = true;
    r.status = outcomes[i].status;
    r.sequence = outcomes[i].sequence;
    batch[i].done(r);
  }
}

// Its own loop, not an engine::lane: a lane runs one task at a time, but a commit takes every
// queued append into one transaction (group commit) and holds checkpoints for their interval.
void journal_writer::loop() {
  constexpr auto checkpoint_interval = std::chrono::milliseconds(100);
  std::chrono::steady_clock::time_point last_checkpoints{};
  for (;;) {
    std::vector<pending_append> batch;
    std::map<std::string, std::uint64_t> checkpoints;
    std::vector<pending_park> parks;
    std::vector<std::function<void(ports::journal_storage&)>> jobs;
    std::uint64_t finished = 0;
    {
      std::unique_lock<std::mutex> lock{mu_};
      // Checkpoints wait for their interval (or a stop): written with every commit they would
      // cost a second fsync per commit. They only bound redelivery, so a little lag is fine.
      auto checkpoints_due = [&] {
        return !checkpoints_.empty() &&
               (stopping_ ||
                std::chrono::steady_clock::now() - last_checkpoints >= checkpoint_interval);
      };
      for (;;) {
        if (stopping_ || !appends_.empty() || !parks_.empty() || !jobs_.empty() ||
            checkpoints_due())
          break;
        if (checkpoints_.empty())
          wake_.wait(lock);
        else
          wake_.wait_until(lock, last_checkpoints + checkpoint_interval);
      }
      if (stopping_ && appends_.empty() && checkpoints_.empty() && parks_.empty() && jobs_.empty())
        return;
      // Group commit: take what is queued, up to max_batch events per transaction.
      if (appends_.size() <= max_batch_) {
        batch.swap(appends_);
      } else {
        auto split = appends_.begin() + static_cast<std::ptrdiff_t>(max_batch_);
        batch.assign(std::make_move_iterator(appends_.begin()), std::make_move_iterator(split));
        appends_.erase(appends_.begin(), split);
      }
      parks.swap(parks_);
      jobs.swap(jobs_);
      finished = batch.size() + parks.size() + jobs.size();
      if (checkpoints_due()) {
        checkpoints.swap(checkpoints_);
        finished += checkpoint_calls_;
        checkpoint_calls_ = 0;
      }
    }
    if (!batch.empty())
      write_appends(batch);
    for (auto& p : parks) {
      bool ok = true;
      std::string error;
      try {
        store_->park(p.letter.consumer, p.letter.sequence, p.letter.reason, p.letter.attempts,
                     p.letter.last_error);
      } catch (const std::exception& e) {
        ok = false;
        error = e.what();
        spdlog::error("journal: could not park event {} for consumer '{}': {}", p.letter.sequence,
                      p.letter.consumer, error);
      }
      if (p.done)
        p.done(ok, error);
    }
    if (!checkpoints.empty())
      last_checkpoints = std::chrono::steady_clock::now();
    for (auto& [consumer, seq] : checkpoints) {
      try {
        store_->save_checkpoint(consumer, seq);
      } catch (const std::exception& e) {
        // Not fatal: the consumer re-handles events past its last saved checkpoint.
        spdlog::warn("journal: could not save checkpoint {} of consumer '{}': {}", seq, consumer,
                     e.what());
      }
    }
    for (auto& job : jobs) {
      try {
        job(*store_);
      } catch (const std::exception& e) {
        spdlog::error("journal: an admin job failed: {}", e.what());
      }
    }
    {
      std::lock_guard<std::mutex> guard{mu_};
      completed_ += finished;
    }
    idle_.notify_all();
  }
}

journal_reader::journal_reader(ports::journal_options options)
    : options_(std::move(options)), lane_("journal reader", engine::on_stop::drain) {
  options_.read_only = true;
}

journal_reader::~journal_reader() { lane_.stop(); }

void journal_reader::post(std::function<void(ports::journal_storage&)> run,
                          std::function<void(const std::string&)> fail) {
  lane_.post([this, run = std::move(run), fail = std::move(fail)] {
    std::string error;
    try {
      if (!store_)
        store_ = ports::open_journal_storage(options_);
      run(*store_);
      return;
    } catch (const std::exception& e) {
      error = e.what();
    }
    spdlog::warn("journal reader: a read failed: {}", error);
    store_.reset();  // reopen on the next read
    fail(error);
  });
}

void journal_reader::fetch(std::uint64_t after, std::uint32_t limit, fetch_callback done) {
  auto shared = std::make_shared<fetch_callback>(std::move(done));
  post(
      [after, limit, shared](ports::journal_storage& s) {
        auto page = s.read_page(after, limit);
        auto out = std::make_shared<std::vector<event_ptr>>();
        out->reserve(page.events.size());
        for (auto& ev : page.events)
          out->push_back(std::make_shared<const event>(std::move(ev)));
        (*shared)(std::move(out),
                  std::make_shared<const std::vector<unreadable_event>>(std::move(page.unreadable)),
                  {});
      },
      [shared](const std::string& error) { (*shared)(nullptr, nullptr, error); });
}

void journal_reader::checkpoint(std::string consumer, checkpoint_callback done) {
  auto shared = std::make_shared<checkpoint_callback>(std::move(done));
  post([consumer = std::move(consumer),
        shared](ports::journal_storage& s) { (*shared)(s.checkpoint(consumer), {}); },
       [shared](const std::string& error) { (*shared)(0, error); });
}

void unreadable_rows::note(const unreadable_event& what, const std::string& consumer) {
  std::lock_guard<std::mutex> guard{mu_};
  auto i = rows_.find(what.sequence);
  if (i == rows_.end()) {
    if (rows_.size() >= kept) {
      more_ = true;
      return;
    }
    i = rows_.emplace(what.sequence, row{what, {}}).first;
  }
  auto& by = i->second.parked_by;
  if (!consumer.empty() && std::find(by.begin(), by.end(), consumer) == by.end())
    by.push_back(consumer);
}

std::vector<unreadable_rows::row> unreadable_rows::rows() const {
  std::lock_guard<std::mutex> guard{mu_};
  std::vector<row> out;
  out.reserve(rows_.size());
  for (const auto& [seq, r] : rows_)
    out.push_back(r);
  return out;
}

bool unreadable_rows::more() const {
  std::lock_guard<std::mutex> guard{mu_};
  return more_;
}

}  // namespace switchboard::actors
