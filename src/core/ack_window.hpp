#pragma once

// Which deliveries of one AMQP channel may be acknowledged: the broker numbers deliveries
// 1, 2, 3, ... and an ack with `multiple` covers every tag up to the one given, so only the
// longest prefix of completed deliveries can be acknowledged, in one ack. Pure.

#include <cstddef>
#include <cstdint>
#include <deque>

namespace switchboard::core {

class ack_window {
public:
  /// One `basic.ack(up_to, multiple=true)` covering `count` deliveries; `count` 0 = none.
  struct ack {
    std::uint64_t up_to = 0;
    std::size_t count = 0;
  };

  /// Records a delivery; tags arrive in increasing order.
  void delivered(std::uint64_t tag) { entries_.push_back({tag, false}); }

  /// Marks a delivery complete (durable, or safely in the error queue). False if the tag is
  /// not waiting (unknown, already acknowledged or already complete).
  bool complete(std::uint64_t tag) {
    if (entries_.empty() || tag < entries_.front().tag)
      return false;
    const auto index = tag - entries_.front().tag;
    // Tags are consecutive on a channel, so the index is direct; check in case they are not.
    if (index < entries_.size() && entries_[index].tag == tag)
      return mark(entries_[index]);
    for (auto& e : entries_)
      if (e.tag == tag)
        return mark(e);
    return false;
  }

  /// The ack to send now: the longest completed prefix, removed from the window.
  ack take_ackable() {
    ack a;
    while (!entries_.empty() && entries_.front().done) {
      a.up_to = entries_.front().tag;
      ++a.count;
      entries_.pop_front();
    }
    return a;
  }

  /// Deliveries recorded and not yet acknowledged (complete or not).
  std::size_t size() const noexcept { return entries_.size(); }

  /// Forgets everything (the channel is gone; the broker redelivers what was not acked).
  void clear() noexcept { entries_.clear(); }

private:
  struct entry {
    std::uint64_t tag;
    bool done;
  };
  static bool mark(entry& e) {
    if (e.done)
      return false;
    e.done = true;
    return true;
  }
  std::deque<entry> entries_;
};

}  // namespace switchboard::core
